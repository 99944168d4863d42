"""The providers that carry messages, one interface for every channel (docs/messages.md).

A provider is a context manager (its connection lives for one batch) with `send(outgoing, commit) -> provider
message id`. It must call `commit()` at its point of no return — just before the byte or request after which the
message may have been accepted — so the message is recorded as handed over before it can arrive; it raises
`NotDelivered` when it knows the message was not accepted, anything else when it does not know.
"""

import contextlib
import json
import re
import smtplib
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid, sanitize_address
from django.utils import timezone

from cim.automation.messaging import NotDelivered, Outgoing
from cim.automation.models.messages import Channel

Commit = Callable[..., None]
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class Provider:
    name = ""
    channel = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def send(self, out: Outgoing, commit: Commit) -> str:
        raise NotImplementedError


def email_message(out: Outgoing) -> EmailMultiAlternatives:
    """The email of `out`, with a Message-ID of ours that delivery receipts and bounces name."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
    email = EmailMultiAlternatives(
        subject=out.rendered.subject,
        body=out.rendered.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[out.address],
        headers={"Message-ID": make_msgid(idstring=f"cim.{out.message.pk}", domain=domain)},
    )
    if out.rendered.html:
        email.attach_alternative(out.rendered.html, "text/html")
    return email


def _smtp_data(email: EmailMultiAlternatives) -> bytes:
    """The message as SMTP DATA: CRLF line ends, leading dots doubled (RFC 5321 4.5.2), without the terminator."""
    data = email.message().as_bytes(linesep="\r\n")
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpProvider(Provider):
    """Email over SMTP (Django's EMAIL_* settings), speaking the protocol step by step so the commit falls between
    the message's body and the DATA terminator: a server discards a message whose DATA never ended."""

    name = "smtp"
    channel = Channel.EMAIL

    def __enter__(self):
        self.backend = get_connection(SMTP_BACKEND, fail_silently=False)
        self.backend.open()
        self.smtp: smtplib.SMTP = self.backend.connection
        return self

    def __exit__(self, *exc) -> None:
        # A connection that broke mid-batch cannot say goodbye.
        with contextlib.suppress(Exception):
            self.backend.close()

    def _refuse(self, code: int, reply: bytes) -> None:
        with contextlib.suppress(smtplib.SMTPException):
            self.smtp.rset()
        raise NotDelivered(f"{code} {reply.decode(errors='replace')}", retry=400 <= code < 500)

    def send(self, out: Outgoing, commit: Commit) -> str:
        email = email_message(out)
        message_id = email.extra_headers["Message-ID"]
        encoding = email.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(email.from_email, encoding)
        recipient = sanitize_address(out.address, encoding)
        data = _smtp_data(email)
        smtp = self.smtp
        smtp.ehlo_or_helo_if_needed()
        options = ["SMTPUTF8"] if smtp.has_extn("smtputf8") and not (sender + recipient).isascii() else []
        code, reply = smtp.mail(sender, options)
        if code != 250:
            self._refuse(code, reply)
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            self._refuse(code, reply)
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._refuse(code, reply)
        smtp.send(data)
        commit(message_id)
        smtp.send(b".\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            raise NotDelivered(f"{code} {reply.decode(errors='replace')}", retry=400 <= code < 500)
        return message_id


class DjangoEmailProvider(Provider):
    """Email through any other Django email backend: django-anymail's HTTP providers, the console, files, memory.
    The commit comes before the hand-over; an answer lost on the way leaves the message for review."""

    name = "django"
    channel = Channel.EMAIL

    def __enter__(self):
        self.backend = get_connection(fail_silently=False)
        self.name = settings.EMAIL_BACKEND.rsplit(".", 2)[-2][:30]
        return self

    def send(self, out: Outgoing, commit: Commit) -> str:
        email = email_message(out)
        message_id = email.extra_headers["Message-ID"]
        commit(message_id)
        self.backend.send_messages([email])
        status = getattr(email, "anymail_status", None)
        return (status.message_id if status is not None and status.message_id else "") or message_id


class FileProvider(Provider):
    """SMS or WeChat messages appended as JSON lines to `$CIM_MESSAGE_OUTBOX_DIR/<channel>.jsonl`: for development
    and tests, where no gateway is at hand."""

    name = "file"
    _lock = threading.Lock()

    def __init__(self, channel: str):
        self.channel = channel

    def __enter__(self):
        directory = Path(settings.CIM_MESSAGE_OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        self.file = (directory / f"{self.channel}.jsonl").open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def send(self, out: Outgoing, commit: Commit) -> str:
        provider_message_id = uuid.uuid4().hex
        line = {
            "id": provider_message_id,
            "key": out.message.key,
            "to": out.address,
            "text": out.rendered.body,
            "template": out.template.provider_template_id if out.template else "",
            "params": out.rendered.params,
            "at": timezone.now().isoformat(),
        }
        commit(provider_message_id)
        with self._lock:
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.file.flush()
        return provider_message_id


# Providers by channel and the name a CIM_MESSAGE_<CHANNEL>_PROVIDER setting gives them.
PROVIDERS: dict[str, dict[str, Callable[[], Provider]]] = {
    Channel.SMS: {"file": lambda: FileProvider(Channel.SMS)},
    Channel.WECHAT: {"file": lambda: FileProvider(Channel.WECHAT)},
}


def provider_for(channel: str) -> Provider:
    """The configured provider of `channel`."""
    if channel == Channel.EMAIL:
        return SmtpProvider() if settings.EMAIL_BACKEND == SMTP_BACKEND else DjangoEmailProvider()
    setting = settings.CIM_MESSAGE_SMS_PROVIDER if channel == Channel.SMS else settings.CIM_MESSAGE_WECHAT_PROVIDER
    try:
        return PROVIDERS[channel][setting]()
    except KeyError:
        raise ValueError(f"Unknown {channel} provider {setting!r}; see docs/messages.md") from None
