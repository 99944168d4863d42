"""The email a message becomes, in the two forms providers hand over.

`email_message` is Django's `EmailMultiAlternatives`, for Django's other mail backends (django-anymail's HTTP
providers, the console). `email_wire` is the same email as the bytes of an SMTP DATA, for the SMTP path: building
them with the `email` package's generator and header policies costs about 1 ms a message, most of a campaign
worker's time, so it assembles Django's MIME layout from the standard library's encoders instead (RFC 2047
headers, quoted-printable for over-long lines). A test holds the two equal, parsed, for every shape of input.
"""

import base64
import binascii
import re
import secrets
import smtplib
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid, sanitize_address

from cim.automation.message_tracking import email_tracking
from cim.automation.messaging import Outgoing

# RFC 5321 4.5.3.1.6: a line of a message may hold at most 998 octets.
_MAX_LINE = 998
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_LINE_END = re.compile(r"\r\n|\r")
_LEADING_DOT = re.compile(rb"(?m)^\.")
# UTF-8 bytes per RFC 2047 encoded-word: 52 base64 characters, a word of 64, a folded line under 78.
_WORD_BYTES = 39


@dataclass(frozen=True)
class EmailParts:
    """What varies between emails: the rendered message with its tracking, addressed."""

    subject: str
    text: str
    html: str
    sender: str
    recipient: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Wire:
    """An email ready for SMTP: its Message-ID, envelope addresses, and its DATA without the terminator."""

    message_id: str
    sender: str
    recipient: str
    data: bytes


def email_parts(out: Outgoing) -> EmailParts:
    """`out` as an email: a Message-ID of ours that delivery receipts and bounces name, an unsubscribe link and
    header, and click and open tracking."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"
    language = out.template.language if out.template else settings.LANGUAGE_CODE
    text, html, headers = email_tracking(
        out.message, text=out.rendered.body, html_body=out.rendered.html, language=language
    )
    return EmailParts(
        subject=out.rendered.subject,
        text=text,
        html=html,
        sender=settings.DEFAULT_FROM_EMAIL,
        recipient=out.address,
        headers={"Message-ID": make_msgid(idstring=f"cim.{out.message.pk}", domain=domain), **headers},
    )


def django_email(parts: EmailParts) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        subject=" ".join(parts.subject.split()),
        body=parts.text,
        from_email=parts.sender,
        to=[parts.recipient],
        headers=parts.headers,
    )
    if parts.html:
        email.attach_alternative(parts.html, "text/html")
    return email


def email_message(out: Outgoing) -> EmailMultiAlternatives:
    return django_email(email_parts(out))


@lru_cache(maxsize=64)
def _sanitized(address: str) -> str:
    return sanitize_address(address, settings.DEFAULT_CHARSET)


def _address(address: str) -> str:
    """The address as Django's SMTP backend gives it (IDNA domains, RFC 2047 names); most need nothing."""
    return address if _PLAIN_ADDRESS.fullmatch(address) else _sanitized(address)


def envelope_address(address: str) -> str:
    """The address as MAIL FROM and RCPT TO take it (`<addr>`); `smtplib.quoteaddr` parses every address, at a
    tenth of a campaign worker's time, to find what a plain address already is."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _encoded_words(value: str) -> str:
    """`value` as RFC 2047 base64 encoded-words of whole characters, one per folded line. The `email` package's
    `Header.encode` writes the same at about ten times the cost, another tenth of a campaign worker's time."""
    words, word, size = [], [], 0
    for char in value:
        length = len(char.encode())
        if word and size + length > _WORD_BYTES:
            words.append("".join(word))
            word, size = [], 0
        word.append(char)
        size += length
    words.append("".join(word))
    return "\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode('ascii')}?=" for w in words)


def _header(name: str, value: str) -> str:
    # One logical line: a line break a template put in a subject is a space, never a header of its own.
    value = " ".join(value.split())
    if not value.isascii():
        return f"{name}: {_encoded_words(value)}"
    if len(name) + len(value) < _MAX_LINE - 2:
        return f"{name}: {value}"
    return f"{name}: {Header(value, 'us-ascii', header_name=name).encode()}"


def _body(text: str) -> tuple[str, bytes]:
    """A text part's transfer encoding and bytes, as Django chooses them: 7bit or 8bit, quoted-printable when a line
    is too long for SMTP."""
    body = _LINE_END.sub("\n", text).encode()
    if max(map(len, body.split(b"\n"))) > _MAX_LINE:
        return "quoted-printable", binascii.b2a_qp(body, istext=True)
    return ("7bit" if body.isascii() else "8bit"), body


def _text_headers(subtype: str, encoding: str) -> str:
    return f'Content-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: {encoding}'


def wire(parts: EmailParts) -> Wire:
    """`parts` as SMTP DATA: Django's layout, CRLF line ends, leading dots doubled (RFC 5321 4.5.2)."""
    sender, recipient = _sanitized(parts.sender), _address(parts.recipient)
    common = [
        _header("Subject", parts.subject),
        f"From: {sender}",
        f"To: {recipient}",
        f"Date: {formatdate(localtime=settings.EMAIL_USE_LOCALTIME)}",
        *(_header(name, value) for name, value in parts.headers.items()),
    ]
    if parts.html:
        # 80 random bits: a body that holds the boundary by chance is not a risk worth a scan of every body.
        boundary = f"===============cim{secrets.token_hex(10)}=="
        head = [f'Content-Type: multipart/alternative;\n boundary="{boundary}"', "MIME-Version: 1.0", *common]
        alternatives = [("plain", parts.text)] if parts.text else []  # as Django: no empty text part
        chunks = []
        for subtype, content in [*alternatives, ("html", parts.html)]:
            encoding, body = _body(content)
            chunks += [f"\n--{boundary}\n{_text_headers(subtype, encoding)}\n\n".encode(), body]
        body = b"".join([*chunks, f"\n--{boundary}--\n".encode()])
    else:
        encoding, body = _body(parts.text)
        head = [_text_headers("plain", encoding), *common]
    data = "\n".join(head).encode() + b"\n\n" + body
    data = _LEADING_DOT.sub(b"..", data.replace(b"\n", b"\r\n"))
    return Wire(
        message_id=parts.headers["Message-ID"],
        sender=sender,
        recipient=recipient,
        data=data if data.endswith(b"\r\n") else data + b"\r\n",
    )


def email_wire(out: Outgoing) -> Wire:
    return wire(email_parts(out))
