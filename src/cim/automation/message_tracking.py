"""What happens to a message after it left: opens, clicks, one-click unsubscribes and delivery receipts.

Links in emails carry signed tokens (django.core.signing) naming the message, so nobody can forge an open, a click
to a URL of their choosing (no open redirect) or someone else's unsubscribe. Unsubscribing records a consent
withdrawal for the message's purpose in the privacy ledger, which stops every pending message of that purpose.
"""

import html
import re
from functools import lru_cache
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.automation.models import Message, SuppressedAddress
from cim.automation.models.messages import MessageStatus
from cim.privacy.models import Consent
from cim.privacy.services import consent_record

_OPEN, _CLICK, _UNSUBSCRIBE = "cim.messages.open", "cim.messages.click", "cim.messages.unsubscribe"
UNSUBSCRIBE_TEXT_VERSION = "one-click-unsubscribe"


def _site(path: str) -> str:
    return settings.CIM_SITE_URL.rstrip("/") + path


def _token(salt: str, value) -> str:
    return signing.dumps(value, salt=salt, compress=True)


def _read(salt: str, token: str):
    try:
        return signing.loads(token, salt=salt)
    except signing.BadSignature:
        return None


@lru_cache(maxsize=32)
def _route(name: str, script_prefix: str, urlconf: str | None) -> tuple[str, str]:
    """The path of route `name` before and after its token. Reversed once: `reverse` costs about 0.3 ms, and every
    email carries several of these links. Tokens are URL-safe (base64 and colons), so nothing needs quoting."""
    before, _mark, after = reverse(name, args=["TOKEN"]).partition("TOKEN")
    return before, after


def _url(name: str, token: str) -> str:
    before, after = _route(name, get_script_prefix(), get_urlconf())
    return _site(f"{before}{token}{after}")


def open_url(message: Message) -> str:
    return _url("automation:message_open", _token(_OPEN, message.pk))


def click_url(message: Message, url: str) -> str:
    return _url("automation:message_click", _token(_CLICK, [message.pk, url]))


def unsubscribe_url(message: Message) -> str:
    return _url("automation:message_unsubscribe", _token(_UNSUBSCRIBE, message.pk))


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


def email_tracking(message: Message, *, text: str, html_body: str, language: str) -> tuple[str, str, dict]:
    """The text and HTML of an email with an unsubscribe link, links that count clicks and an open pixel, and the
    RFC 8058 one-click unsubscribe headers."""
    unsubscribe = unsubscribe_url(message)
    with translation.override(language):
        footer = _("Unsubscribe")
    text = f"{text.rstrip()}\n\n-- \n{footer}: {unsubscribe}\n"
    if html_body:
        html_body = _HREF.sub(
            lambda m: f"{m[1]}{m[2]}{html.escape(click_url(message, html.unescape(m[3])))}{m[2]}", html_body
        )
        extra = (
            f'<p style="font-size:12px;color:#888"><a href="{html.escape(unsubscribe)}">{html.escape(footer)}</a></p>'
            f'<img src="{html.escape(open_url(message))}" width="1" height="1" alt="" style="display:block">'
        )
        html_body = html_body.replace("</body>", extra + "</body>") if "</body>" in html_body else html_body + extra
    links = [f"<{unsubscribe}>"]
    if settings.CIM_MESSAGE_UNSUBSCRIBE_EMAIL:
        subject = quote(f"unsubscribe {_token(_UNSUBSCRIBE, message.pk)}")
        links.append(f"<mailto:{settings.CIM_MESSAGE_UNSUBSCRIBE_EMAIL}?subject={subject}>")
    headers = {"List-Unsubscribe": ", ".join(links), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return text, html_body, headers


def _message(salt: str, token: str) -> Message | None:
    pk = _read(salt, token)
    return Message.objects.filter(pk=pk).first() if isinstance(pk, int) else None


def _event(name: str, message: Message) -> None:
    data = {"message": message.pk, "channel": message.channel}
    if message.campaign_id:
        data["campaign"] = message.campaign_id
    event_publish(name, customer_id=message.customer_id, data=data)


def message_open(*, token: str) -> Message | None:
    """Record the first open of the message the pixel names; None for a token that is not ours."""
    message = _message(_OPEN, token)
    if message is None:
        return None
    with transaction.atomic():
        if Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=timezone.now()):
            _event("message.opened", message)
    return message


def message_click(*, token: str) -> str | None:
    """Record a click (a click is an open too) and return where the link goes; None for a token not ours."""
    value = _read(_CLICK, token)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
        return None
    message = Message.objects.filter(pk=value[0]).first()
    if message is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
        if Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=now):
            _event("message.clicked", message)
    return value[1]


def message_for_unsubscribe(*, token: str) -> Message | None:
    return _message(_UNSUBSCRIBE, token)


def message_unsubscribe(*, token: str, ip: str | None = None, user_agent: str = "", language: str = "") -> Message:
    """Withdraw the consent the message was sent under (one click, RFC 8058); a second click changes nothing.
    Raises LookupError for a token that is not ours."""
    message = message_for_unsubscribe(token=token)
    if message is None:
        raise LookupError(token)
    latest = Consent.objects.filter(customer_id=message.customer_id, purpose=message.purpose).order_by("-at", "-id")
    row = latest.first()
    if row is not None and not row.granted:
        return message
    with translation.override(language or settings.LANGUAGE_CODE):
        text = _("Unsubscribed with the link in a message.")
    consent_record(
        customer=message.customer,
        purpose=message.purpose,
        text=text,
        text_version=UNSUBSCRIBE_TEXT_VERSION,
        language=language,
        channel=message.channel,
        ip=ip,
        user_agent=user_agent,
        granted=False,
        actor=None,
    )
    return message


# Where a receipt may move a message: a later receipt never undoes a bounce or a complaint.
_FROM = {
    MessageStatus.DELIVERED: {MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.REVIEW},
    MessageStatus.BOUNCED: {MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.REVIEW},
    MessageStatus.COMPLAINED: {
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.REVIEW,
        MessageStatus.BOUNCED,
    },
    MessageStatus.FAILED: {MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.REVIEW},
}
RECEIPT_STATUSES = tuple(_FROM)


def message_status_update(*, provider: str, provider_message_id: str, status: str, detail: str = "") -> Message | None:
    """Record a delivery receipt (a provider's webhook, an SMTP bounce): delivered, bounced, complained or failed.
    A bounce or a complaint suppresses the address for good. Returns the message, or None when no message of
    `provider` has that id or the status would move it backwards."""
    if status not in _FROM:
        raise ValueError(f"unknown receipt status {status!r}")
    message = Message.objects.filter(provider=provider, provider_message_id=provider_message_id).first()
    if message is None or message.status not in _FROM[status]:
        return None
    now = timezone.now()
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=message.status).update(
            status=status, status_at=now, error=detail[:1000] if detail else message.error
        )
        if not moved:
            return None
        if status in (MessageStatus.BOUNCED, MessageStatus.COMPLAINED) and message.address_key:
            SuppressedAddress.objects.get_or_create(
                channel=message.channel,
                address_key=message.address_key,
                # The provider's words may quote the address: only who said it is kept here.
                defaults={"reason": status, "detail": provider[:300], "message": message},
            )
        audit_record(actor=None, action=f"message.{status}", target=message, fields=["status"])
        if status != MessageStatus.FAILED:
            _event(f"message.{status}", message)
    message.refresh_from_db()
    return message
