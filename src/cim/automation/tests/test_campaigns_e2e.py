"""Campaigns end to end against a real SMTP server (aiosmtpd) on loopback: what arrives, consent, caps, quiet
hours, the A/B winner, clicks credited with the orders that follow, and bounces coming back."""

import email
import email.policy
import re
import socket
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone

from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_create
from cim.automation import campaigns
from cim.automation.bounces import report_process
from cim.automation.campaigns import (
    campaign_advance,
    campaign_cancel,
    campaign_conversions_credit,
    campaign_create,
    campaign_pause,
    campaign_start,
)
from cim.automation.campaigns_selectors import campaign_report
from cim.automation.messaging import messages_deliver
from cim.automation.models import Campaign, Message, MessageTemplate, SuppressedAddress
from cim.customers.tests.factories import make_customer
from cim.privacy.selectors import consent_holds
from cim.privacy.services import consent_record
from cim.segments.services import segment_create, segment_members_add

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Mailbox:
    async def handle_DATA(self, server, session, envelope):
        self.received.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"

    def __init__(self):
        self.received: list[email.message.EmailMessage] = []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.CIM_MESSAGE_QUIET_HOURS = ""  # tests run at any hour; quiet hours have their own test
    settings.CIM_MESSAGE_CAPS = "marketing=3/7"
    settings.CIM_MESSAGE_UNSUBSCRIBE_EMAIL = "unsubscribe@shop.example.com"


@pytest.fixture
def mailbox(settings):
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    controller.stop()


def person(actor, name, address, *, consent=True):
    made = make_customer(actor, display_name=name, emails=[{"address": address}])
    if consent:
        consent_record(customer=made, purpose="marketing", text="同意接收营销邮件", text_version="1", actor=None)
    return made


def audience(actor, *customers):
    listing = segment_create(actor=actor, name=f"名单{Campaign.objects.count()}", kind="static")
    segment_members_add(segment=listing, customer_ids=[c.pk for c in customers], actor=actor)
    return listing


VARIANT = {
    "subject": "{{ customer.display_name }}，双十二特惠",
    "body": "亲爱的{{ customer.display_name }}：\n新品上市，详见 https://shop.example.com/sale\n",
    "html": '<p>{{ customer.display_name }}</p><a href="https://shop.example.com/sale">看看</a>',
}


def run(campaign, now=None):
    """What the worker does: advance the campaign, deliver what is due, and advance again (sent once all went)."""
    advance = campaign_advance(campaign=campaign, now=now)
    messages_deliver()
    campaign_advance(campaign=campaign, now=now)
    campaign.refresh_from_db()
    return advance


def test_the_campaign_arrives_personalised_with_unsubscribe_and_tracking(admin_user, mailbox):
    fang = person(admin_user, "王芳", "fang@example.com")
    lei = person(admin_user, "李雷", "lei@example.com")
    silent = person(admin_user, "没同意", "no@example.com", consent=False)
    campaign = campaign_create(
        actor=admin_user, name="双十二", segment=audience(admin_user, fang, lei, silent), variants=[VARIANT], cost="50"
    )
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)

    assert campaign.status == Campaign.Status.SENT
    assert sorted(m["To"] for m in mailbox.received) == ["fang@example.com", "lei@example.com"]
    letter = next(m for m in mailbox.received if m["To"] == "fang@example.com")
    assert letter["Subject"] == "王芳，双十二特惠"
    assert letter["Message-ID"]
    unsubscribe = letter["List-Unsubscribe"]
    assert re.search(r"<https?://[^>]+>", unsubscribe) and "<mailto:" in unsubscribe
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = letter.get_body(("html",)).get_content()
    assert "https://shop.example.com/sale" not in html  # rewritten into a signed tracking link
    assert len(_tracked_links(letter)) == 1
    report = campaign_report(campaign=campaign)
    assert (report.total.sent, report.total.delivered, report.suppressed) == (2, 2, {"consent": 1})


def _tracked_links(letter) -> list[str]:
    """The signed click links of the letter (not its unsubscribe link)."""
    html = letter.get_body(("html",)).get_content()
    return [url for url in re.findall(r'href="(https?://[^"]+)"', html) if "/m/c/" in url]


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_click_then_an_order_credits_the_campaign_once_to_the_latest_click(admin_user, mailbox):
    fang = person(admin_user, "王芳", "fang@example.com")
    first = campaign_create(actor=admin_user, name="首发", segment=audience(admin_user, fang), variants=[VARIANT])
    second = campaign_create(
        actor=admin_user, name="返场", segment=audience(admin_user, fang), variants=[VARIANT], cost="20"
    )
    client = Client()
    for campaign in (first, second):
        campaign_start(campaign=campaign, actor=admin_user)
        run(campaign)
        click = client.get(_path(_tracked_links(mailbox.received[-1])[-1]))
        assert click.status_code == 302 and click["Location"] == "https://shop.example.com/sale"
    clicked = {m.campaign_id: m.clicked_at for m in Message.objects.filter(customer=fang)}
    assert all(clicked.values())

    order = order_create(
        customer=fang, data=OrderInput(lines=[{"name": "茶具", "unit_price": "300"}]), actor=admin_user
    )
    assert campaign_conversions_credit() == 1
    assert campaign_conversions_credit() == 0  # credited once
    report = campaign_report(campaign=second)
    assert (report.total.converted, report.total.orders, report.total.revenue) == (1, 1, Decimal("300.00"))
    assert report.roi == pytest.approx(14.0)  # (300 - 20) / 20
    assert campaign_report(campaign=first).total.converted == 0
    # An order after the window is not credited.
    late = order_create(
        customer=fang,
        data=OrderInput(ordered_at=timezone.now() + timedelta(days=8), lines=[{"name": "茶叶", "unit_price": "9"}]),
        actor=admin_user,
    )
    assert campaign_conversions_credit() == 0
    assert not hasattr(late, "campaign_conversion") or late.campaign_conversion is None
    assert order.campaign_conversion.campaign_id == second.pk


def test_ab_test_winner_by_click_rate_then_the_rest_gets_it(admin_user, mailbox):
    people = [person(admin_user, f"客户{i}", f"c{i}@example.com") for i in range(20)]
    campaign = campaign_create(
        actor=admin_user,
        name="标题测试",
        segment=audience(admin_user, *people),
        variants=[VARIANT, {**VARIANT, "subject": "{{ customer.display_name }}，只剩今天"}],
        test_percent=40,
        test_metric="click_rate",
        test_wait_hours=2,
    )
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)
    assert campaign.status == Campaign.Status.TESTING
    assert len(mailbox.received) == 8  # 40 % of 20, four each
    b_template = campaign.variants.get(label="B").template_id
    test_b = Message.objects.filter(campaign_id=campaign.pk, template_id=b_template)
    assert test_b.count() == 4
    client = Client()
    for letter in mailbox.received:
        if "只剩今天" in letter["Subject"]:
            client.get(_path(_tracked_links(letter)[-1]))
            break
    run(campaign)  # before the test period ends nothing more goes out
    assert len(mailbox.received) == 8 and campaign.winner is None

    run(campaign, now=campaign.test_ends_at + timedelta(minutes=1))
    assert campaign.status == Campaign.Status.SENT and campaign.winner.label == "B"
    assert len(mailbox.received) == 20
    assert Message.objects.filter(campaign_id=campaign.pk, template_id=b_template).count() == 16
    assert len({m["To"] for m in mailbox.received}) == 20  # nobody got two


def test_consent_withdrawn_before_sending_stops_the_pending_sends(admin_user, mailbox):
    fang = person(admin_user, "王芳", "fang@example.com")
    lei = person(admin_user, "李雷", "lei@example.com")
    campaign = campaign_create(
        actor=admin_user, name="撤回", segment=audience(admin_user, fang, lei), variants=[VARIANT]
    )
    campaign_start(campaign=campaign, actor=admin_user)
    campaign_advance(campaign=campaign)
    assert Message.objects.filter(campaign_id=campaign.pk, status="queued").count() == 2
    consent_record(customer=lei, purpose="marketing", text="退订", text_version="1", granted=False, actor=None)
    messages_deliver()
    assert [m["To"] for m in mailbox.received] == ["fang@example.com"]
    assert Message.objects.get(customer=lei).reason == "consent"


def test_frequency_cap_and_quiet_hours(admin_user, mailbox, settings):
    settings.CIM_MESSAGE_CAPS = "marketing=1/7"
    fang = person(admin_user, "王芳", "fang@example.com")
    lei = person(admin_user, "李雷", "lei@example.com")
    earlier = campaign_create(actor=admin_user, name="上周", segment=audience(admin_user, fang), variants=[VARIANT])
    campaign_start(campaign=earlier, actor=admin_user)
    run(earlier)
    capped = campaign_create(actor=admin_user, name="本周", segment=audience(admin_user, fang, lei), variants=[VARIANT])
    campaign_start(campaign=capped, actor=admin_user)
    run(capped)
    assert campaign_report(campaign=capped).suppressed == {"frequency_cap": 1}
    assert [m["To"] for m in mailbox.received] == ["fang@example.com", "lei@example.com"]

    settings.CIM_MESSAGE_CAPS = ""
    settings.CIM_MESSAGE_QUIET_HOURS = "21:00-08:00"
    night = datetime(2026, 12, 3, 23, 30, tzinfo=SHANGHAI)
    late = campaign_create(actor=admin_user, name="夜里", segment=audience(admin_user, fang), variants=[VARIANT])
    campaign_start(campaign=late, actor=admin_user)
    campaign_advance(campaign=late, now=night)
    message = Message.objects.get(campaign_id=late.pk)
    assert message.status == "queued"
    assert message.send_after.astimezone(SHANGHAI) >= datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)


def test_throttle_pause_resume_and_cancel(admin_user, mailbox):
    people = [person(admin_user, f"客户{i}", f"t{i}@example.com") for i in range(5)]
    campaign = campaign_create(
        actor=admin_user, name="限速", segment=audience(admin_user, *people), variants=[VARIANT], throttle_per_minute=2
    )
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)
    assert len(mailbox.received) == 2  # the first minute's share; the rest is due minute by minute
    due = sorted(Message.objects.filter(campaign_id=campaign.pk, status="queued").values_list("send_after", flat=True))
    assert len(due) == 3 and due[-1] - due[0] == timedelta(minutes=1)

    campaign_pause(campaign=campaign, actor=admin_user)
    campaign_start(campaign=campaign, actor=admin_user)  # resume: due again from now, still throttled
    Message.objects.filter(campaign_id=campaign.pk, status="queued").update(send_after=timezone.now())
    campaign_cancel(campaign=campaign, actor=admin_user)
    messages_deliver()
    assert len(mailbox.received) == 2
    assert not Message.objects.filter(campaign_id=campaign.pk, status="queued").exists()


def test_bounce_report_and_anymail_complaint_mark_the_message_and_the_address(admin_user, mailbox, settings):
    fang = person(admin_user, "王芳", "fang@example.com")
    lei = person(admin_user, "李雷", "lei@example.com")
    campaign = campaign_create(
        actor=admin_user, name="退信", segment=audience(admin_user, fang, lei), variants=[VARIANT]
    )
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)
    letter = next(m for m in mailbox.received if m["To"] == "fang@example.com")
    dsn = DSN.format(message_id=letter["Message-ID"]).encode()
    result = report_process(dsn)
    assert (result.updated, result.unknown) == (1, 0)
    bounced = Message.objects.get(customer=fang)
    assert bounced.status == "bounced"
    assert SuppressedAddress.objects.filter(address_key=bounced.address_key, reason="bounced").exists()
    # The complaint comes through anymail's tracking signal, as an ESP webhook would send it.
    from anymail.signals import AnymailTrackingEvent, tracking

    other = Message.objects.get(customer=lei)
    event = AnymailTrackingEvent(
        event_type="complained", message_id=other.provider_message_id, recipient="lei@example.com"
    )
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    Message.objects.filter(pk=other.pk).update(provider="test")
    tracking.send(sender=object, event=event, esp_name="Test")
    other.refresh_from_db()
    assert other.status == "complained"
    report = campaign_report(campaign=campaign)
    assert (report.total.bounced, report.total.complained, report.total.delivered) == (1, 1, 1)
    assert consent_holds([fang.pk, lei.pk], "marketing") == {fang.pk, lei.pk}  # a bounce is not a withdrawal


DSN = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: bounces@shop.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

This is the mail system at host mx.example.com. Your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Thu, 3 Dec 2026 18:00:00 +0800

Final-Recipient: rfc822; fang@example.com
Original-Recipient: rfc822;fang@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <fang@example.com>: Recipient address
    rejected: User unknown

--B1
Content-Type: text/rfc822-headers

From: CIM <noreply@shop.example.com>
To: fang@example.com
Subject: =?utf-8?b?546L6Iqz?=
Message-ID: {message_id}

--B1--
"""


def test_queueing_commits_slice_by_slice_stops_on_a_pause_and_resumes_without_duplicates(
    admin_user, mailbox, monkeypatch
):
    people = [person(admin_user, f"客户{i}", f"s{i}@example.com") for i in range(5)]
    campaign = campaign_create(actor=admin_user, name="分片", segment=audience(admin_user, *people), variants=[VARIANT])
    campaign_start(campaign=campaign, actor=admin_user)
    monkeypatch.setattr(campaigns, "QUEUE_SLICE", 2)
    queue = campaigns.messages_queue
    slices = []

    def paused_after_the_first_slice(**kwargs):
        slices.append(kwargs["customer_ids"])
        result = queue(**kwargs)
        if len(slices) == 1:  # someone presses pause while the first slice is being queued
            campaign_pause(campaign=campaign, actor=admin_user)
        return result

    monkeypatch.setattr(campaigns, "messages_queue", paused_after_the_first_slice)
    assert campaign_advance(campaign=campaign).queued == 2
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.queued_at is None and len(slices) == 1

    monkeypatch.setattr(campaigns, "messages_queue", queue)
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)  # the rest of the audience, then sent
    assert campaign.status == "sent"
    assert sorted(m["To"] for m in mailbox.received) == [f"s{i}@example.com" for i in range(5)]


ENGLISH = {
    "language": "en",
    "subject": "{{ customer.display_name }}, our Double 12 offer",
    "body": "Dear {{ customer.display_name }},\nnew arrivals: https://shop.example.com/sale\n",
    "html": '<p>{{ customer.display_name }}</p><a href="https://shop.example.com/sale">Have a look</a>',
}


def test_each_recipient_gets_the_variant_in_the_language_they_consented_in(admin_user, mailbox):
    fang = person(admin_user, "王芳", "fang@example.com")
    anna = make_customer(admin_user, display_name="Anna Li", emails=[{"address": "anna@example.com"}])
    consent_record(customer=anna, purpose="marketing", text="I agree", text_version="1", language="en-GB", actor=None)
    campaign = campaign_create(
        actor=admin_user,
        name="双语",
        segment=audience(admin_user, fang, anna),
        variants=[{**VARIANT, "translations": [ENGLISH]}],
    )
    campaign_start(campaign=campaign, actor=admin_user)
    run(campaign)
    subjects = {m["To"]: str(m["Subject"]) for m in mailbox.received}
    assert subjects == {"fang@example.com": "王芳，双十二特惠", "anna@example.com": "Anna Li, our Double 12 offer"}
    english = next(m for m in mailbox.received if m["To"] == "anna@example.com")
    assert "Unsubscribe" in english.get_body(preferencelist=("plain",)).get_content()  # the footer follows too

    # Both languages count for the one variant, in the report and in attribution.
    Client().get(_path(_tracked_links(english)[-1]))
    order_create(customer=anna, data=OrderInput(lines=[{"name": "Tea set", "unit_price": "80"}]), actor=admin_user)
    assert campaign_conversions_credit() == 1
    [variant] = campaign_report(campaign=campaign).variants
    assert (variant.label, variant.sent, variant.clicked, variant.converted) == ("A", 2, 1, 1)


def test_a_translation_must_be_in_another_language(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        campaign_create(
            actor=admin_user,
            name="重复语言",
            segment=audience(admin_user),
            variants=[{**VARIANT, "translations": [{**ENGLISH, "language": "zh-hans"}, {**ENGLISH, "subject": ""}]}],
        )
    assert set(raised.value.message_dict) == {"variants.0.translations", "variants.0.translations.1.subject"}


def test_a_translation_and_the_main_language_can_change_places(admin_user):
    from cim.automation.campaigns import campaign_update, variant_content

    chinese = {**VARIANT, "language": "zh-hans"}
    campaign = campaign_create(
        actor=admin_user, name="互换", segment=audience(admin_user), variants=[{**chinese, "translations": [ENGLISH]}]
    )
    campaign_update(campaign=campaign, actor=admin_user, variants=[{**ENGLISH, "translations": [chinese]}])
    [variant] = campaign.variants.all()
    content = variant_content(variant)
    assert (content["language"], content["subject"]) == ("en", ENGLISH["subject"])
    assert [(t["language"], t["subject"]) for t in content["translations"]] == [("zh-hans", VARIANT["subject"])]
    assert MessageTemplate.objects.filter(name=f"campaign:{campaign.pk}:A").count() == 2
