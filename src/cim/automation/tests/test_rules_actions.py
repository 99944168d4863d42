"""Rule steps that hand work elsewhere: messages and webhook calls are keyed by run and step, so a worker killed
mid-run and started again queues each once; consent withdrawn before delivery stops the send."""

import pytest

from cim.automation import rules as engine
from cim.automation.events import events_dispatch
from cim.automation.messaging import messages_deliver
from cim.automation.models import Message, MessageTemplate, RuleRun, WebhookDelivery
from cim.automation.models.messages import MessageStatus
from cim.automation.rules import rule_run_advance, rule_runs_execute
from cim.automation.rules_services import rule_activate, rule_create
from cim.automation.webhooks import webhook_endpoint_create
from cim.customers.services import customers_tag
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.CIM_MESSAGE_OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    engine.rules_index_reset()
    yield
    engine.rules_index_reset()


@pytest.fixture
def welcome(db):
    return MessageTemplate.objects.create(
        name="欢迎", channel="email", purpose="marketing", language="zh-hans", subject="您好", body="欢迎光临"
    )


def consenting(admin_user, name: str):
    customer = make_customer(admin_user, display_name=name, emails=[{"address": "fang@example.com"}])
    consent_record(customer=customer, purpose="marketing", text="同意", text_version="1", actor=None)
    return customer


def test_a_send_step_queues_one_message_even_when_the_worker_dies_after_it(admin_user, welcome):
    endpoint, _secret = webhook_endpoint_create(
        data={"url": "http://127.0.0.1:9/hook", "event_types": ["customer.created"], "scope_role": "administrator"},
        actor=admin_user,
    )
    rule = rule_activate(
        rule=rule_create(
            actor=admin_user,
            name="欢迎信",
            trigger={"event": "customer.tag_added", "tag": "新客"},
            steps=[
                {"action": "send", "template": "欢迎"},
                {"action": "webhook", "endpoint": endpoint.pk, "event_type": "rule.step"},
                {"action": "add_tag", "tag": "已欢迎"},
            ],
        ),
        actor=admin_user,
    )
    fang = consenting(admin_user, "王芳")
    customers_tag(customer_ids=[fang.pk], add=["新客"], actor=admin_user)
    events_dispatch()
    run = RuleRun.objects.get(rule=rule)
    real = engine.step_execute

    def dies_at_the_tag(**kwargs):
        if kwargs["instruction"].step["action"] == "add_tag":
            raise KeyboardInterrupt
        return real(**kwargs)

    engine.step_execute = dies_at_the_tag
    try:
        with pytest.raises(KeyboardInterrupt):
            rule_run_advance(run_id=run.pk)
    finally:
        engine.step_execute = real
    assert RuleRun.objects.get(pk=run.pk).current_step == 2
    rule_runs_execute()
    message = Message.objects.get()
    assert message.key == f"rule:{rule.pk}:run:{run.pk}:step:0" and message.rule_run_id == run.pk
    delivery = WebhookDelivery.objects.get(event_type="rule.step")
    assert delivery.key == f"rule:{rule.pk}:run:{run.pk}:step:1"
    assert RuleRun.objects.get(pk=run.pk).status == RuleRun.Status.DONE


def test_consent_withdrawn_stops_a_rule_s_pending_send(admin_user, welcome):
    rule_activate(
        rule=rule_create(
            actor=admin_user,
            name="欢迎信",
            trigger={"event": "customer.tag_added", "tag": "新客"},
            steps=[{"action": "send", "template": "欢迎"}],
        ),
        actor=admin_user,
    )
    fang = consenting(admin_user, "王芳")
    customers_tag(customer_ids=[fang.pk], add=["新客"], actor=admin_user)
    events_dispatch()
    rule_runs_execute()
    assert Message.objects.get().status == MessageStatus.QUEUED
    consent_record(customer=fang, purpose="marketing", text="退订", text_version="1", granted=False, actor=None)
    messages_deliver()
    message = Message.objects.get()
    assert message.status == MessageStatus.SUPPRESSED and message.reason == "consent"
