"""The SMTP path's email bytes (`wire`) say what Django's EmailMultiAlternatives says, for every shape of input."""

import email
import email.policy
import smtplib

from hypothesis import given, settings
from hypothesis import strategies as st

from cim.automation.message_email import EmailParts, django_email, envelope_address, wire

# Text as templates produce it: Chinese and Latin letters, line breaks of every kind, lines that start with a dot,
# trailing spaces, and lines far over SMTP's 998 octets.
_LINE = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=60),
    st.sampled_from([".", "..以点开头", "亲爱的王芳：", "-- ", "=?utf-8?b?x?=", "尾随空格  ", "a" * 1200, "中" * 400]),
)
_TEXT = st.lists(_LINE, max_size=8).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda end: end.join(lines))
)
_SUBJECT = st.one_of(st.text(max_size=120), st.sampled_from(["王芳，双十二特惠", "line\nbreak", "x" * 300]))
_ADDRESS = st.sampled_from(
    ["fang@example.com", "o'neil+tag@mail.example.co.uk", "user@例子.中国", "Wang Fang <fang@example.com>"]
)
_SENDER = st.sampled_from(["CIM <noreply@localhost>", "客户中心 <care@shop.example.cn>", "plain@example.com"])


def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def _said(message: email.message.EmailMessage) -> dict:
    def content(part):
        return None if part is None else part.get_content().replace("\r\n", "\n").rstrip("\n")

    # Folding whitespace is not part of a header's value (the email package folds a long word after the colon).
    headers = ["Subject", "From", "To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"]
    return {
        **{name: " ".join(str(message[name]).split()) for name in headers},
        "type": message.get_content_type(),
        "text": content(message.get_body(preferencelist=("plain",))),
        "html": content(message.get_body(preferencelist=("html",))),
        "defects": [type(d).__name__ for part in message.walk() for d in part.defects],
    }


@settings(max_examples=150, deadline=None)
@given(subject=_SUBJECT, text=_TEXT, html=st.one_of(st.just(""), _TEXT), recipient=_ADDRESS, sender=_SENDER)
def test_wire_bytes_read_as_djangos_email(subject, text, html, recipient, sender):
    parts = EmailParts(
        subject=subject,
        text=text,
        html=html,
        sender=sender,
        recipient=recipient,
        headers={
            "Message-ID": "<cim.7.1@shop.example.cn>",
            "List-Unsubscribe": "<https://cim.example.com/m/u/token/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    sent = wire(parts)
    assert sent.data.endswith(b"\r\n") and b"\n" not in sent.data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in sent.data.split(b"\r\n"))
    # What the server stores once it undoes the dot-stuffing (RFC 5321 4.5.2).
    stored = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in sent.data.split(b"\r\n"))
    expected = django_email(parts).message().as_bytes(linesep="\r\n")
    assert _said(_parsed(stored)) == _said(_parsed(expected))
    assert (sent.sender, sent.recipient, sent.message_id) == (
        django_email(parts).message()["From"],
        django_email(parts).message()["To"],
        "<cim.7.1@shop.example.cn>",
    )


@given(address=st.one_of(_ADDRESS, _SENDER, st.emails().map(str)))
def test_envelope_addresses_are_what_smtplib_would_send(address):
    assert envelope_address(address) == smtplib.quoteaddr(address)
