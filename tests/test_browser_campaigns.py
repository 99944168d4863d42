"""Acting on customers in a real browser. In Chinese: a campaign written with an English translation, previewed for
one customer, sent (each recipient in their language), its report, and a customer unsubscribing from the link in the
email. In English: a message template sent from its page and
found in the message log, and a webhook endpoint whose test message a real receiver verifies."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.automation.campaigns import campaigns_advance
from cim.automation.messaging import messages_deliver
from cim.automation.models import Campaign, Message, WebhookDelivery
from cim.automation.tests.webhook_receiver import Receiver
from cim.customers.tests.factories import make_customer
from cim.privacy.selectors import consent_holds
from cim.privacy.services import consent_record
from cim.segments.services import segment_create

pytestmark = pytest.mark.browser


@pytest.fixture
def shop(settings, live_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.CIM_SITE_URL = live_server.url
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    people = [
        make_customer(admin, display_name=name, emails=[{"address": address}])
        for name, address in (("王芳", "fang@example.com"), ("李雷", "lei@example.com"))
    ]
    for person in people:
        consent_record(customer=person, purpose="marketing", text="同意接收营销信息", text_version="1", actor=None)
    anna = make_customer(admin, display_name="Anna", emails=[{"address": "anna@example.com"}])
    consent_record(customer=anna, purpose="marketing", text="I agree", text_version="1", language="en", actor=None)
    everyone = segment_create(actor=admin, name="全部客户", rules={"match": "all", "rules": []})
    return admin, people, everyone


def test_a_campaign_written_previewed_sent_reported_and_unsubscribed(
    page, live_server, transactional_db, shop, screenshots
):
    _admin, (fang, _lei), everyone = shop
    browser_log_in(page, live_server.url, "alice")
    page.on("dialog", lambda dialog: dialog.accept())  # "Send this campaign to its audience now?"

    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "新春促销")
    page.select_option("#id_segment", str(everyone.pk))
    page.fill("#id_variant-0-subject", "{{ customer.display_name }}，新春快乐")
    page.fill("#id_variant-0-body", "{{ customer.display_name }}您好，新春礼盒八折：https://shop.example.com/cny")
    page.locator("[data-translation=A] summary").click()
    page.select_option("#id_variant-0-tr-language", "en")
    page.fill("#id_variant-0-tr-subject", "Happy New Year, {{ customer.display_name }}")
    page.fill("#id_variant-0-tr-body", "Dear {{ customer.display_name }}, our gift boxes: https://shop.example.com/cny")
    page.fill("#id_preview_customer", fang.number)
    page.locator("#preview-button").click()
    expect(page.locator("#campaign-preview")).to_contain_text("王芳，新春快乐")
    page.screenshot(path=screenshots / "campaign-form-zh.png", full_page=True)
    page.locator("#campaign-form button[type=submit]").click()
    expect(page.locator("#campaign-status")).to_have_text("草稿")

    page.locator("#campaign-start").click()
    expect(page.locator("#campaign-status")).not_to_have_text("草稿")  # started before the worker looks
    campaigns_advance()  # what the worker does every minute, and right after a start
    assert messages_deliver().sent == 3
    page.reload()
    totals = page.locator("#campaign-totals")
    expect(totals.locator("[data-figure=sent]")).to_have_text("3")
    page.screenshot(path=screenshots / "campaign-report-zh.png", full_page=True)

    subjects = {m.to[0]: m.subject for m in mail.outbox}
    assert subjects["fang@example.com"] == "王芳，新春快乐" and subjects["anna@example.com"] == "Happy New Year, Anna"
    letter = next(m for m in mail.outbox if m.to == ["fang@example.com"])
    unsubscribe = re.search(r"<(http[^>]+/m/u/[^>]+)>", letter.extra_headers["List-Unsubscribe"])[1]
    page.goto(unsubscribe)  # the customer's browser: no login needed, the page only asks
    page.locator("form button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("退订")
    assert consent_holds([fang.pk], "marketing") == set()

    page.goto(f"{live_server.url}/campaigns/{Campaign.objects.get().pk}/")
    expect(page.locator("#campaign-totals [data-figure=unsubscribed]")).to_have_text("1")


def test_a_template_sent_from_its_page_and_a_webhook_tested_in_english(
    page, live_server, transactional_db, shop, screenshots
):
    _admin, (fang, _lei), _everyone = shop
    browser_log_in(page, live_server.url, "alice")
    page.locator("button[name=language][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.goto(f"{live_server.url}/messages/templates/new/")
    page.fill("#id_name", "Spring offer")
    page.select_option("#id_channel", "email")
    page.select_option("#id_purpose", "marketing")
    page.fill("#id_subject", "Hello {{ customer.display_name }}")
    page.fill("#id_body", "Our spring offer for {{ customer.display_name }}.")
    page.get_by_role("button", name="Save").click()
    page.fill("#preview-customer", fang.number)
    page.locator("#preview form button[type=submit]").click()
    expect(page.locator("#preview-result")).to_contain_text("Hello 王芳")
    page.fill("#send-customers", fang.number)
    page.locator("#send-button").click()
    expect(page.locator(".alert-success")).to_contain_text("1 messages queued")
    messages_deliver()
    page.reload()
    expect(page.locator("main")).to_contain_text("Sent")
    assert Message.objects.get(customer=fang).status == "sent"
    page.screenshot(path=screenshots / "messages-log-en.png", full_page=True)

    receiver = Receiver().start()
    try:
        page.goto(f"{live_server.url}/automation/webhooks/new/")
        page.fill("#id_url", receiver.url)
        page.check("#id_all_events")
        page.select_option("#id_scope_role", "administrator")
        page.locator("#endpoint-form button[type=submit]").click()
        secret = page.locator("#webhook-secret code").inner_text().strip()
        assert secret.startswith("whsec_")
        receiver.secrets.append(secret)
        page.locator("#webhook-test").click()
        expect(page.locator("#deliveries")).to_contain_text("HTTP 200")
        expect(page.locator("#deliveries")).to_contain_text("Succeeded")
        page.screenshot(path=screenshots / "webhook-test-en.png", full_page=True)
    finally:
        receiver.stop()
    [received] = receiver.received
    assert received.payload["type"] == "webhook.test" and receiver.bad_signatures == 0
    assert WebhookDelivery.objects.get().status == "succeeded"
