"""Messaging core: templates, queueing checks, and exactly-once delivery to a real SMTP server on loopback."""

import email
import json
import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from cim.automation import message_providers, messaging
from cim.automation.messaging import (
    messages_deliver,
    messages_queue,
    messages_reap,
    quiet_until,
    template_check,
    template_preview,
    template_render,
)
from cim.automation.models import Message, MessageTemplate, SuppressedAddress
from cim.customers.models import ExternalId
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record, restriction_set

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; recipients starting `bad` are refused, `busy` deferred."""

    def __init__(self):
        self.received: list[email.message.Message] = []
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bad"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.received.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def _messaging_settings(settings, tmp_path):
    settings.CIM_MESSAGE_QUIET_HOURS = ""  # tests run at any hour; quiet hours have their own tests
    settings.CIM_MESSAGE_OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


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


@pytest.fixture
def welcome(db):
    return MessageTemplate.objects.create(
        name="欢迎",
        channel="email",
        purpose="marketing",
        language="zh-hans",
        subject="{{ customer.display_name }}，您好",
        body="亲爱的{{ customer.given_name or customer.display_name }}：\n.以点开头的一行\n{{ offer }}\n",
        html="<p>{{ customer.display_name }}</p>",
    )


def customer(actor, name, address=None, *, consent=True, language="zh-hans", phone=None):
    made = make_customer(
        actor,
        display_name=name,
        emails=[{"address": address}] if address else [],
        phones=[{"number": phone}] if phone else [],
    )
    if consent:
        consent_record(
            customer=made, purpose="marketing", text="同意接收", text_version="1", language=language, actor=None
        )
    return made


def test_templates_render_in_a_sandbox(admin_user, welcome):
    fang = customer(admin_user, "王芳", "fang@example.com")
    rendered = template_render(welcome, fang, {"offer": "<b>九折</b>"})
    assert rendered.subject == "王芳，您好"
    assert "<b>九折</b>" in rendered.body  # text is not escaped
    hostile = MessageTemplate(subject="x", body="{{ customer.__class__.__mro__ }}{{ ''.__class__.__mro__ }}", html="")
    with pytest.raises(ValidationError):
        template_preview(template=hostile, customer=fang)
    html = MessageTemplate(subject="", body="", html="<p>{{ offer }}</p>")
    assert template_render(html, fang, {"offer": "<script>"}).html == "<p>&lt;script&gt;</p>"


def test_template_errors_name_the_field(admin_user):
    with pytest.raises(ValidationError) as raised:
        template_check(subject="{{ customer.display_name", body="ok", html="{% if %}")
    assert set(raised.value.message_dict) == {"subject", "html"}
    with pytest.raises(ValidationError) as raised:
        template_check(body="ok", params={"name": 3})
    assert "params" in raised.value.message_dict


def test_preview_is_strict_about_unknown_variables(admin_user):
    fang = customer(admin_user, "王芳", "fang@example.com")
    typo = MessageTemplate(subject="{{ customer.dispaly_name }}", body="", html="")
    with pytest.raises(ValidationError):
        template_preview(template=typo, customer=fang)


def test_queue_suppresses_with_reasons_and_is_idempotent(admin_user, welcome):
    ok = customer(admin_user, "可以", "ok@example.com")
    no_consent = customer(admin_user, "未同意", "no@example.com", consent=False)
    restricted = customer(admin_user, "限制", "r@example.com")
    restriction_set(customer=restricted, actor=admin_user)
    no_address = customer(admin_user, "没邮箱")
    ids = [ok.pk, no_consent.pk, restricted.pk, no_address.pk]
    result = messages_queue(customer_ids=ids, template=welcome, key_prefix="test:1", actor=admin_user)
    assert result.queued == 1
    assert result.suppressed == {"consent": 1, "restricted": 1, "no_address": 1}
    reasons = dict(Message.objects.values_list("customer_id", "reason"))
    assert reasons == {ok.pk: "", no_consent.pk: "consent", restricted.pk: "restricted", no_address.pk: "no_address"}
    again = messages_queue(customer_ids=ids, template=welcome, key_prefix="test:1", actor=admin_user)
    assert (again.queued, again.suppressed, again.duplicates) == (0, {}, 4)
    assert Message.objects.count() == 4


def test_queue_enqueues_delivery_once_per_transaction(admin_user, welcome, django_capture_on_commit_callbacks):
    a, b = customer(admin_user, "甲", "a@example.com"), customer(admin_user, "乙", "b@example.com")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        messages_queue(customer_ids=[a.pk], template=welcome, key_prefix="t:1", actor=admin_user)
        messages_queue(customer_ids=[b.pk], template=welcome, key_prefix="t:2", actor=admin_user)
    assert [c.__name__ for c in callbacks].count("_queue_delivery") == 1


def test_frequency_cap_per_customer_and_purpose(admin_user, welcome, settings):
    settings.CIM_MESSAGE_CAPS = "marketing=2/7"
    fang = customer(admin_user, "王芳", "fang@example.com")
    results = [
        messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix=f"cap:{n}", actor=admin_user)
        for n in range(3)
    ]
    assert [r.queued for r in results] == [1, 1, 0]
    assert results[2].suppressed == {"frequency_cap": 1}
    old = timezone.now() - timedelta(days=8)
    Message.objects.filter(key__in=[f"cap:0:customer:{fang.pk}"]).update(created_at=old)
    assert messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="cap:3", actor=admin_user).queued == 1


def test_quiet_hours_defer_to_the_next_allowed_time(settings):
    settings.CIM_MESSAGE_QUIET_HOURS = "21:00-08:00"
    late = datetime(2026, 12, 3, 22, 30, tzinfo=SHANGHAI)
    early = datetime(2026, 12, 4, 3, 0, tzinfo=SHANGHAI)
    morning = datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)
    assert quiet_until(late, "marketing") == morning
    assert quiet_until(early, "marketing") == morning
    assert quiet_until(datetime(2026, 12, 4, 12, 0, tzinfo=SHANGHAI), "marketing") is None
    assert quiet_until(late, "service") is None  # CIM_MESSAGE_QUIET_HOURS_EXEMPT
    settings.CIM_MESSAGE_QUIET_HOURS = "12:00-14:00"
    assert quiet_until(datetime(2026, 12, 4, 13, 0, tzinfo=SHANGHAI), "marketing") == datetime(
        2026, 12, 4, 14, 0, tzinfo=SHANGHAI
    )


def test_queued_in_quiet_hours_waits(admin_user, welcome, settings):
    settings.CIM_MESSAGE_QUIET_HOURS = "21:00-08:00"
    fang = customer(admin_user, "王芳", "fang@example.com")
    at = datetime(2026, 12, 3, 23, 0, tzinfo=SHANGHAI)
    messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="q", send_after=at, actor=admin_user)
    assert Message.objects.get().send_after == datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)


def test_templates_by_language_follow_the_consent_language(admin_user, welcome):
    english = MessageTemplate.objects.create(
        name="欢迎", channel="email", purpose="marketing", language="en", subject="Hello", body="Hi"
    )
    fang = customer(admin_user, "王芳", "fang@example.com")
    john = customer(admin_user, "John", "john@example.com", language="en-US")
    messages_queue(
        customer_ids=[fang.pk, john.pk], template={"zh-hans": welcome, "en": english}, key_prefix="l", actor=admin_user
    )
    assert dict(Message.objects.values_list("customer_id", "template")) == {fang.pk: welcome.pk, john.pk: english.pk}


def test_delivery_over_smtp_sends_each_message_once(admin_user, welcome, mailbox):
    people = [customer(admin_user, f"客户{n}", f"c{n}@example.com") for n in range(5)]
    messages_queue(
        customer_ids=[p.pk for p in people],
        template=welcome,
        key_prefix="smtp",
        extra_context={"offer": "全场九折"},
        actor=admin_user,
    )
    run = messages_deliver(batch_size=2)
    assert (run.sent, run.failed) == (5, 0)
    assert sorted(e.rcpt_tos[0] for e in mailbox.envelopes) == [f"c{n}@example.com" for n in range(5)]
    first = next(m for m in mailbox.received if m["To"] == "c0@example.com")
    assert str(email.header.make_header(email.header.decode_header(first["Subject"]))) == "客户0，您好"
    text = first.get_payload()[0].get_payload(decode=True).decode()
    assert ".以点开头的一行" in text and "全场九折" in text  # the dot-stuffing was undone by the server
    sent = Message.objects.get(customer=people[0])
    assert sent.status == "sent" and sent.sent_at and sent.provider == "smtp" and not sent.claimed_by
    assert sent.provider_message_id == first["Message-ID"]
    assert messages_deliver().sent == 0 and len(mailbox.received) == 5


def test_refused_recipients_fail_or_wait(admin_user, welcome, mailbox):
    bad, busy = customer(admin_user, "坏", "bad@example.com"), customer(admin_user, "忙", "busy@example.com")
    good = customer(admin_user, "好", "good@example.com")
    messages_queue(customer_ids=[bad.pk, busy.pk, good.pk], template=welcome, key_prefix="r", actor=admin_user)
    run = messages_deliver()
    assert (run.sent, run.failed, run.retried) == (1, 1, 1)
    statuses = {m.customer_id: m for m in Message.objects.all()}
    assert statuses[bad.pk].status == "failed" and "550" in statuses[bad.pk].error
    assert statuses[busy.pk].status == "queued" and statuses[busy.pk].send_after > timezone.now()
    assert statuses[busy.pk].attempts == 1
    assert [e.rcpt_tos for e in mailbox.envelopes] == [["good@example.com"]]


def test_consent_withdrawn_after_queueing_stops_the_send(admin_user, welcome, mailbox):
    fang = customer(admin_user, "王芳", "fang@example.com")
    messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="w", actor=admin_user)
    consent_record(customer=fang, purpose="marketing", text="退订", text_version="1", granted=False, actor=None)
    run = messages_deliver()
    assert (run.sent, run.suppressed) == (0, 1)
    assert Message.objects.get().reason == "consent" and not mailbox.received


def test_suppressed_addresses_are_not_sent_to(admin_user, welcome, mailbox):
    fang = customer(admin_user, "王芳", "fang@example.com")
    messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="s1", actor=admin_user)
    SuppressedAddress.objects.create(channel="email", address_key=fang.emails.get().match_key, reason="bounced")
    assert messages_deliver().suppressed == 1
    result = messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="s2", actor=admin_user)
    assert result.suppressed == {"suppressed_address": 1} and not mailbox.received


class Killed(BaseException):
    """Stands for SIGKILL between the commit and the DATA terminator (tests/test_crash for the real one)."""


def test_a_worker_stopped_after_the_commit_sends_nothing_twice(admin_user, welcome, mailbox, monkeypatch, settings):
    settings.CIM_EMAIL_CONNECTIONS = 2  # windows of two messages: [0, 1], [2, 3], [4]
    people = [customer(admin_user, f"客户{n}", f"c{n}@example.com") for n in range(5)]
    messages_queue(customer_ids=[p.pk for p in people], template=welcome, key_prefix="k", actor=admin_user)
    real_send_window = message_providers.SmtpProvider.send_window
    windows = []

    def dies_in_the_second_window(self, window, commit):
        windows.append(window)
        if len(windows) == 2:

            def commit_then_die(message_ids):
                commit(message_ids)
                raise Killed

            return real_send_window(self, window, commit_then_die)
        return real_send_window(self, window, commit)

    monkeypatch.setattr(message_providers.SmtpProvider, "send_window", dies_in_the_second_window)
    with pytest.raises(Killed):
        messages_deliver()
    monkeypatch.setattr(message_providers.SmtpProvider, "send_window", real_send_window)
    statuses = sorted(Message.objects.values_list("status", flat=True))
    assert statuses == ["queued", "sending", "sending", "sent", "sent"]
    assert messages_deliver().sent == 0  # the lease of the killed worker still holds its claimed messages
    later = timezone.now() + timedelta(seconds=301)
    assert messages_reap(now=later) == 2
    Message.objects.filter(status="queued").update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert messages_deliver().sent == 1
    received = sorted(e.rcpt_tos[0] for e in mailbox.envelopes)
    assert len(received) == len(set(received)) == 3  # the window in doubt never arrived, and was not resent
    in_doubt = {out.message.customer_id for out in windows[1]}
    assert set(Message.objects.filter(status="review").values_list("customer_id", flat=True)) == in_doubt


def test_sms_and_wechat_go_to_the_file_provider(admin_user, settings):
    sms = MessageTemplate.objects.create(
        name="短信",
        channel="sms",
        purpose="marketing",
        subject="",
        body="【CIM】{{ customer.display_name }}，生日快乐",
        provider_template_id="SMS_123",
        params={"name": "{{ customer.display_name }}"},
    )
    wechat = MessageTemplate.objects.create(
        name="微信", channel="wechat", purpose="marketing", body="您好", provider_template_id="tpl-1"
    )
    fang = customer(admin_user, "王芳", phone="13800138000")
    ExternalId.objects.create(customer=fang, system="wechat", value="openid-fang")
    messages_queue(customer_ids=[fang.pk], template=sms, key_prefix="sms", actor=admin_user)
    messages_queue(customer_ids=[fang.pk], template=wechat, key_prefix="wx", actor=admin_user)
    assert messages_deliver().sent == 2
    outbox = settings.CIM_MESSAGE_OUTBOX_DIR
    [line] = [json.loads(x) for x in (outbox / "sms.jsonl").read_text().splitlines()]
    assert line["to"] == "+8613800138000" and line["template"] == "SMS_123" and line["params"] == {"name": "王芳"}
    assert json.loads((outbox / "wechat.jsonl").read_text())["to"] == "openid-fang"
    assert set(Message.objects.values_list("provider", "status")) == {("file", "sent")}


def test_a_template_failing_for_one_customer_fails_that_message_only(admin_user, monkeypatch):
    broken = MessageTemplate.objects.create(
        name="坏模板", channel="sms", purpose="marketing", body="{{ 1 / customer.zero }}"
    )
    fang = customer(admin_user, "王芳", phone="13800138000")
    messages_queue(customer_ids=[fang.pk], template=broken, key_prefix="b", actor=admin_user)
    monkeypatch.setattr(messaging, "customer_contexts", lambda ids: {pk: {"zero": 0} for pk in ids})
    run = messages_deliver()
    assert run.failed == 1 and Message.objects.get().status == "failed"


def test_a_run_stops_at_its_limit_and_says_there_is_more(admin_user):
    sms = MessageTemplate.objects.create(name="短信", channel="sms", purpose="marketing", body="您好")
    people = [customer(admin_user, f"客户{n}", phone=f"1380013800{n}") for n in range(3)]
    messages_queue(customer_ids=[p.pk for p in people], template=sms, key_prefix="lim", actor=admin_user)
    first = messages_deliver(limit=2, batch_size=1)
    assert (first.sent, first.more) == (2, True)
    second = messages_deliver(limit=2)
    assert (second.sent, second.more) == (1, False)


def test_an_smtp_server_that_cannot_be_reached_leaves_messages_queued(admin_user, welcome, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nobody listens there
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    fang = customer(admin_user, "王芳", "fang@example.com")
    messages_queue(customer_ids=[fang.pk], template=welcome, key_prefix="down", actor=admin_user)
    run = messages_deliver()
    assert run.unavailable and run.sent == 0
    message = Message.objects.get()
    assert (message.status, message.claimed_by, message.claimed_until) == ("queued", "", None)
