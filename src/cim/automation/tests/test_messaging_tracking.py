"""Opens, clicks, one-click unsubscribe and delivery receipts."""

import io
import json
import re
from urllib.parse import unquote

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from cim.automation.message_tracking import message_status_update
from cim.automation.messaging import messages_deliver, messages_queue
from cim.automation.models import Event, Message, MessageTemplate, SuppressedAddress
from cim.customers.tests.factories import make_customer
from cim.privacy.models import Consent
from cim.privacy.selectors import consent_holds
from cim.privacy.services import consent_record


@pytest.fixture(autouse=True)
def _messaging_settings(settings, tmp_path):
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CIM_SITE_URL = "https://cim.example.com"
    settings.CIM_MESSAGE_UNSUBSCRIBE_EMAIL = "unsubscribe@example.com"


@pytest.fixture
def sent(admin_user):
    """One marketing email sent to 王芳, and the email as it left."""
    template = MessageTemplate.objects.create(
        name="新品",
        channel="email",
        purpose="marketing",
        subject="新品上市",
        body="看看 https://shop.example.com/new",
        html='<html><body><a href="https://shop.example.com/new?a=1&amp;b=2">新品</a></body></html>',
    )
    fang = make_customer(admin_user, display_name="王芳", emails=[{"address": "fang@example.com"}])
    consent_record(customer=fang, purpose="marketing", text="同意", text_version="1", actor=None)
    messages_queue(customer_ids=[fang.pk], template=template, key_prefix="t", actor=admin_user)
    assert messages_deliver().sent == 1
    return Message.objects.get(), mail.outbox[0]


def _links(email) -> tuple[str, str, str]:
    html = email.alternatives[0][0]
    click = re.search(r'href="(https://cim\.example\.com/m/c/[^"]+)"', html)[1]
    pixel = re.search(r'src="(https://cim\.example\.com/m/o/[^"]+)"', html)[1]
    unsubscribe = re.search(r"<(https://cim\.example\.com/m/u/[^>]+)>", email.extra_headers["List-Unsubscribe"])[1]
    return click, pixel, unsubscribe


def _path(url: str) -> str:
    return url.removeprefix("https://cim.example.com")


def test_every_email_carries_one_click_unsubscribe(sent):
    _message, email = sent
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(
        r"<https://\S+/m/u/\S+/>, <mailto:unsubscribe@example.com\?subject=unsubscribe%20\S+>",
        email.extra_headers["List-Unsubscribe"],
    )
    _click, _pixel, unsubscribe = _links(email)
    assert unsubscribe in email.body


def test_opens_and_clicks_are_counted_once_and_links_lead_on(sent, client):
    message, email = sent
    click, pixel, _unsubscribe = _links(email)
    response = client.get(_path(pixel))
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    client.get(_path(pixel))
    response = client.get(_path(click).replace("&amp;", "&"))
    assert response.status_code == 302 and response["Location"] == "https://shop.example.com/new?a=1&b=2"
    message.refresh_from_db()
    assert message.opened_at and message.clicked_at
    names = list(Event.objects.filter(customer_id=message.customer_id).values_list("name", flat=True))
    assert names.count("message.opened") <= 1 and names.count("message.clicked") <= 1


def test_forged_links_lead_nowhere(sent, client):
    _message, email = sent
    click, _pixel, _unsubscribe = _links(email)
    assert client.get(_path(click)[:-3] + "xx/", HTTP_ACCEPT_LANGUAGE="en").status_code == 404
    response = client.get("/m/u/forged/?lang=en")
    assert response.status_code == 404 and b"not valid" in response.content
    assert client.get("/m/o/forged.gif").status_code == 200  # a pixel never shows an error


@pytest.mark.parametrize(("language", "words"), [("zh-hans", "退订"), ("en", "Unsubscribe")])
def test_opening_the_unsubscribe_link_only_asks(sent, language, words):
    message, email = sent
    _click, _pixel, unsubscribe = _links(email)
    response = Client().get(_path(unsubscribe) + f"?lang={language}")
    assert response.status_code == 200 and words in response.content.decode()
    assert consent_holds([message.customer_id], "marketing") == {message.customer_id}


def test_one_click_unsubscribe_withdraws_consent_and_stops_pending_messages(sent, admin_user):
    message, email = sent
    _click, _pixel, unsubscribe = _links(email)
    other = MessageTemplate.objects.get()
    messages_queue(customer_ids=[message.customer_id], template=other, key_prefix="pending", actor=admin_user)
    client = Client(enforce_csrf_checks=True)  # a mail client has neither session nor CSRF token
    response = client.post(_path(unsubscribe), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert consent_holds([message.customer_id], "marketing") == set()
    withdrawal = Consent.objects.filter(customer_id=message.customer_id).latest("at", "id")
    assert (withdrawal.granted, withdrawal.channel) == (False, "email")
    client.post(_path(unsubscribe), {"List-Unsubscribe": "One-Click"})
    assert Consent.objects.filter(customer_id=message.customer_id, granted=False).count() == 1
    assert messages_deliver().suppressed == 1


def test_the_confirmation_page_unsubscribes_in_the_visitors_language(sent):
    message, email = sent
    _click, _pixel, unsubscribe = _links(email)
    response = Client().post(_path(unsubscribe), {"lang": "en"})
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    assert not consent_holds([message.customer_id], "marketing")


def test_a_bounce_suppresses_the_address(sent, admin_user):
    message, _email = sent
    updated = message_status_update(
        provider="locmem", provider_message_id=message.provider_message_id, status="bounced", detail="550 5.1.1"
    )
    assert updated.status == "bounced"
    assert SuppressedAddress.objects.get().address_key == message.address_key
    # A late "delivered" receipt does not undo the bounce; an unknown id changes nothing.
    assert (
        message_status_update(provider="locmem", provider_message_id=message.provider_message_id, status="delivered")
        is None
    )
    assert message_status_update(provider="locmem", provider_message_id="<nope>", status="bounced") is None
    template = MessageTemplate.objects.get()
    result = messages_queue(customer_ids=[message.customer_id], template=template, key_prefix="x", actor=admin_user)
    assert result.suppressed == {"suppressed_address": 1}
    assert Event.objects.filter(name="message.bounced").count() <= 1


def test_receipts_move_messages_forward_only(sent):
    message, _email = sent
    ids = {"provider": "locmem", "provider_message_id": message.provider_message_id}
    assert message_status_update(**ids, status="delivered").status == "delivered"
    assert message_status_update(**ids, status="complained").status == "complained"
    assert SuppressedAddress.objects.get().reason == "complained"
    with pytest.raises(ValueError):
        message_status_update(**ids, status="exploded")


def test_footer_follows_the_template_language(admin_user):
    template = MessageTemplate.objects.create(
        name="news", channel="email", purpose="marketing", language="en", subject="News", body="Hello"
    )
    john = make_customer(admin_user, display_name="John", emails=[{"address": "john@example.com"}])
    consent_record(customer=john, purpose="marketing", text="yes", text_version="1", actor=None)
    messages_queue(customer_ids=[john.pk], template=template, key_prefix="en", actor=admin_user)
    with translation.override("zh-hans"):
        messages_deliver()
    assert "Unsubscribe: https://cim.example.com/m/u/" in mail.outbox[0].body


def test_the_mailto_unsubscribe_mail_withdraws_consent(sent, tmp_path):
    message, email = sent
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", email.extra_headers["List-Unsubscribe"])
    assert mailto[1] == "unsubscribe@example.com"
    # What a mail client sends for the mailto: link (RFC 2369), read by `cim campaigns bounces` from the inbox.
    request = tmp_path / "unsubscribe.eml"
    request.write_text(f"From: fang@example.com\nTo: {mailto[1]}\nSubject: {unquote(mailto[2])}\n\nunsubscribe\n")
    forged = tmp_path / "forged.eml"
    forged.write_text(f"From: x@example.com\nTo: {mailto[1]}\nSubject: Re: unsubscribe 42:forged\n\n")
    out = io.StringIO()
    call_command("campaigns", "bounces", str(forged), str(request), "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"reports": 2, "updated": 0, "unsubscribed": 1, "unknown": 1}
    assert consent_holds([message.customer_id], "marketing") == set()
    withdrawal = Consent.objects.filter(customer_id=message.customer_id).latest("at", "id")
    assert (withdrawal.granted, withdrawal.channel) == (False, "email")
