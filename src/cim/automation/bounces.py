"""Bounces and complaints coming back, turned into message statuses (which suppress the address).

Two ways in, both ending in messaging's `message_status_update`:
- HTTP providers through django-anymail: its webhook views (under /anymail/, basic auth with ANYMAIL's
  WEBHOOK_SECRET) send the normalised `tracking` signal, which `anymail_tracking` maps to our statuses.
- Plain SMTP: the bounce (RFC 3464 delivery status notification) or the complaint (RFC 5965 feedback report)
  comes back as an email to the envelope sender. `report_process` reads one with the standard library's `email`
  package: from the MTA's pipe or a Maildir with `cim campaigns bounces`, or from an HTTP provider's inbound
  webhook (anymail's `inbound` signal). docs/campaigns.md shows the Postfix alias.

The same reader takes the mails of the `mailto:` unsubscribe link (CIM_MESSAGE_UNSUBSCRIBE_EMAIL): a subject of
"unsubscribe <token>" withdraws consent as the one-click link does.
"""

import email
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from email.parser import HeaderParser

from anymail.signals import EventType, inbound, tracking
from django.conf import settings
from django.dispatch import receiver

from cim.automation.message_tracking import message_for_unsubscribe, message_status_update, message_unsubscribe
from cim.automation.models.messages import MessageStatus

logger = logging.getLogger(__name__)

# Anymail's normalised events → our statuses; the others (queued, opened, ...) are tracked by CIM itself.
ANYMAIL_STATUS = {
    EventType.DELIVERED: MessageStatus.DELIVERED,
    EventType.BOUNCED: MessageStatus.BOUNCED,
    EventType.REJECTED: MessageStatus.BOUNCED,
    EventType.FAILED: MessageStatus.FAILED,
    EventType.COMPLAINED: MessageStatus.COMPLAINED,
}
# The provider name messaging records for messages sent over plain SMTP.
SMTP_PROVIDER = "smtp"


def _anymail_provider() -> str:
    """The name messaging records for messages sent through the configured Django email backend (anymail's
    `anymail.backends.mailgun.EmailBackend` → `mailgun`)."""
    return settings.EMAIL_BACKEND.rsplit(".", 2)[-2][:30]


@receiver(tracking, dispatch_uid="cim.automation.bounces.anymail_tracking")
def anymail_tracking(sender, event, esp_name, **kwargs) -> None:
    status = ANYMAIL_STATUS.get(event.event_type)
    if status is None or not event.message_id:
        return
    detail = " ".join(str(part) for part in (event.reject_reason, event.mta_response or event.description) if part)
    message_status_update(
        provider=_anymail_provider(), provider_message_id=event.message_id, status=status, detail=detail[:300]
    )


@receiver(inbound, dispatch_uid="cim.automation.bounces.anymail_inbound")
def anymail_inbound(sender, event, esp_name, **kwargs) -> None:
    """Bounces sent to an address the provider hands to us by its inbound webhook."""
    if event.message is not None and event.message.get_content_type() == "multipart/report":
        report_process(event.message)


@dataclass(frozen=True)
class Notice:
    """What one report says of one message we sent."""

    message_id: str  # the Message-ID of our message, without angle brackets
    status: str  # a MessageStatus
    detail: str


@dataclass
class ReportRun:
    reports: int = 0
    notices: list[Notice] = field(default_factory=list)
    updated: int = 0
    unsubscribed: int = 0
    unknown: int = 0  # reports about no message of ours, or not reports at all


def _original_message_id(report: EmailMessage) -> str:
    """The Message-ID of the message the report is about, from its returned copy or headers."""
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            original = HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
        else:
            continue
        if original is not None and original.get("Message-ID"):
            return str(original["Message-ID"]).strip().strip("<>")
    return ""


def _fields(part: EmailMessage) -> list[EmailMessage]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    text = part.get_payload(decode=True) or b""
    return [HeaderParser().parsestr(block) for block in text.decode("utf-8", "replace").split("\n\n") if block.strip()]


def report_notices(report: EmailMessage) -> list[Notice]:
    """The statuses an RFC 3464 delivery report or an RFC 5965 feedback report gives our message."""
    if report.get_content_type() != "multipart/report":
        return []
    message_id = _original_message_id(report)
    if not message_id:
        return []
    kind = report.get_param("report-type", "").lower()
    notices = []
    for part in report.walk():
        if kind == "delivery-status" and part.get_content_type() in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            for block in _fields(part)[1:]:  # the first block is about the whole message, the others per recipient
                action = (block.get("Action") or "").strip().lower()
                status = (block.get("Status") or "").strip()
                diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
                if action == "failed":
                    notices.append(Notice(message_id, MessageStatus.BOUNCED, f"{status} {diagnostic}".strip()))
                elif action in ("delivered", "relayed", "expanded"):
                    notices.append(Notice(message_id, MessageStatus.DELIVERED, status))
                # "delayed" is not final: the MTA keeps trying and reports again.
        elif kind == "feedback-report" and part.get_content_type() == "message/feedback-report":
            feedback = (_fields(part) or [EmailMessage()])[0].get("Feedback-Type", "abuse")
            notices.append(Notice(message_id, MessageStatus.COMPLAINED, f"feedback: {feedback}".strip()))
    return notices


# The subject the mailto: link of List-Unsubscribe sets (message_tracking), perhaps behind a reply prefix.
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(?:(?:re|aw|回复|答复)\s*[:：]\s*)*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)


def unsubscribe_token(mail: EmailMessage) -> str:
    """The message token of an unsubscribe mail, or ""."""
    try:
        subject = str(make_header(decode_header(mail.get("Subject") or "")))
    except (LookupError, UnicodeError, ValueError):
        return ""
    match = _UNSUBSCRIBE_SUBJECT.match(subject)
    return match[1] if match else ""


def report_process(report: EmailMessage | bytes, *, run: ReportRun | None = None) -> ReportRun:
    """Apply one report: each notice becomes a status update of the message it names; an unsubscribe mail
    withdraws the consent its message was sent under."""
    run = run or ReportRun()
    if isinstance(report, bytes):
        report = email.message_from_bytes(report, policy=email.policy.compat32)
    run.reports += 1
    notices = report_notices(report)
    if not notices:
        token = unsubscribe_token(report)
        if token and message_for_unsubscribe(token=token):
            message_unsubscribe(token=token, user_agent="email: List-Unsubscribe mailto")
            run.unsubscribed += 1
        else:
            run.unknown += 1
    for notice in notices:
        run.notices.append(notice)
        found = False
        for message_id in (notice.message_id, f"<{notice.message_id}>"):
            found = found or bool(
                message_status_update(
                    provider=SMTP_PROVIDER, provider_message_id=message_id, status=notice.status, detail=notice.detail
                )
            )
        if found:
            run.updated += 1
        else:
            run.unknown += 1
    return run


def maildir_process(path: str, *, keep: bool = False) -> ReportRun:
    """Process every new report in a Maildir (the bounce address's mailbox); processed ones are removed, or with
    `keep` moved to cur/ marked seen."""
    import mailbox

    run = ReportRun()
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in list(box.iterkeys()):
        message = box.get_message(key)
        if message.get_subdir() != "new":
            continue
        report_process(box.get_bytes(key), run=run)
        if keep:
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message
        else:
            box.remove(key)
    return run
