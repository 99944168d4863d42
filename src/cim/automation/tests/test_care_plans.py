"""Care plans and the daily run: greetings through messages_queue (consent respected, keyed, once), call tasks for
owners moved to the next workday, idempotent runs; gifts; the PI registry covers the new models."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cim.accounts.roles import Role
from cim.activities.models import FollowUp
from cim.automation.care import (
    care_key,
    care_plan_create,
    care_plan_run,
    care_plan_update,
    care_run,
    care_templates_create,
    gift_record,
)
from cim.automation.models import CareRun, CareTask, Gift, Message, MessageTemplate
from cim.automation.tasks_care import care_run_task
from cim.core.schedule import PERIODIC
from cim.customers.services import PermissionDenied
from cim.customers.tests.factories import make_customer
from cim.privacy.erasure import customer_erase
from cim.privacy.services import consent_record, restriction_set
from cim.segments.services import segment_create, segment_members_add

BIRTHDAY = date(1990, 12, 3)
TODAY = date(2026, 12, 3)  # a Thursday


@pytest.fixture(autouse=True)
def _messaging(settings, tmp_path):
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.CIM_MESSAGE_OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def greetings(db):
    return {
        language: MessageTemplate.objects.create(
            name="生日祝福", channel="email", purpose="marketing", language=language, subject="生日快乐", body="祝福"
        )
        for language in ("zh-hans", "en")
    }


def guest(actor, name, *, birthday=BIRTHDAY, consent=True, owner=None, **fields):
    made = make_customer(
        actor,
        display_name=name,
        birthday=birthday,
        emails=[{"address": f"{abs(hash(name))}@example.com"}],
        owner_id=owner.pk if owner else None,
        **fields,
    )
    if consent:
        consent_record(
            customer=made, purpose="marketing", text="同意", text_version="1", language="zh-hans", actor=None
        )
    return made


def test_a_greeting_plan_queues_once_per_customer_and_respects_consent(admin_user, greetings):
    fang = guest(admin_user, "王芳")
    refused = guest(admin_user, "李四", consent=False)
    guest(admin_user, "张三", birthday=date(1990, 12, 4))
    plan = care_plan_create(name="生日祝福", occasion="birthday", templates=list(greetings.values()), actor=admin_user)
    run = care_plan_run(plan=plan, day=TODAY, actor=admin_user)
    assert (run.customers, run.queued, run.suppressed) == (2, 1, {"consent": 1})
    message = Message.objects.get(customer=fang)
    assert message.key == care_key("birthday", TODAY, fang.pk) == f"care:birthday:2026-12-03:customer:{fang.pk}"
    assert message.origin == "care" and message.purpose == "marketing"
    assert Message.objects.get(customer=refused).status == "suppressed"
    # The same day again: skipped; forced, still nothing twice (the keys).
    assert care_plan_run(plan=plan, day=TODAY, actor=admin_user).skipped
    again = care_plan_run(plan=plan, day=TODAY, force=True, actor=admin_user)
    assert (again.queued, again.suppressed) == (0, {})
    assert Message.objects.count() == 2
    record = CareRun.objects.get(plan=plan, day=TODAY)
    assert (record.customers, record.queued, record.suppressed) == (2, 1, {"consent": 1})


def test_lead_days_greet_ahead_of_the_occasion(admin_user, greetings):
    fang = guest(admin_user, "王芳")
    plan = care_plan_create(
        name="提前三天", occasion="birthday", lead_days=3, templates=[greetings["zh-hans"]], actor=admin_user
    )
    run = care_plan_run(plan=plan, day=date(2026, 11, 30), actor=admin_user)
    assert (run.occasion_day, run.queued) == (TODAY, 1)
    assert Message.objects.get(customer=fang).key == f"care:birthday:2026-12-03:customer:{fang.pk}"


def test_a_festival_plan_greets_the_members_of_its_segment(admin_user, greetings):
    vip = guest(admin_user, "王芳")
    guest(admin_user, "李四")
    segment = segment_create(actor=admin_user, name="贵宾", kind="static")
    segment_members_add(segment=segment, customer_ids=[vip.pk], actor=admin_user)
    plan = care_plan_create(
        name="中秋问候",
        occasion="mid_autumn_festival",
        segment=segment,
        templates=[greetings["zh-hans"]],
        actor=admin_user,
    )
    assert care_plan_run(plan=plan, day=date(2026, 9, 24), actor=admin_user).customers == 0
    run = care_plan_run(plan=plan, day=date(2026, 9, 25), actor=admin_user)
    assert (run.customers, run.queued) == (1, 1)


def test_call_tasks_go_to_the_owner_on_the_next_workday_once(admin_user, make_user):
    seller = make_user(Role.SALES, "seller")
    mine = guest(admin_user, "王芳", owner=seller, birthday=date(1990, 2, 15))
    nobody = guest(admin_user, "李四", birthday=date(1990, 2, 15))
    restricted = guest(admin_user, "赵六", birthday=date(1990, 2, 15))
    restriction_set(customer=restricted, actor=admin_user)
    plan = care_plan_create(name="生日电话", occasion="birthday", action="call_task", actor=admin_user)
    # 15 February 2026 is a Sunday inside the Spring Festival holiday (15–23 February): due on the 24th.
    run = care_plan_run(plan=plan, day=date(2026, 2, 15), actor=admin_user)
    assert run.tasks == 2
    tasks = {t.customer_id: t for t in FollowUp.objects.all()}
    assert set(tasks) == {mine.pk, nobody.pk}
    assert tasks[mine.pk].owner == seller and tasks[nobody.pk].owner == admin_user  # the fallback administrator
    local = timezone.localtime(tasks[mine.pk].due_at)
    assert (local.date(), local.hour) == (date(2026, 2, 24), 10)
    assert tasks[mine.pk].title  # "Care call: Birthday", in the business language
    assert care_plan_run(plan=plan, day=date(2026, 2, 15), force=True, actor=admin_user).tasks == 0
    assert FollowUp.objects.count() == 2 and CareTask.objects.count() == 2


def test_the_daily_job_runs_every_active_plan_and_is_registered(admin_user, greetings, monkeypatch):
    guest(admin_user, "王芳")
    care_plan_create(name="生日祝福", occasion="birthday", templates=[greetings["zh-hans"]], actor=admin_user)
    care_plan_create(name="停用", occasion="birthday", action="call_task", is_active=False, actor=admin_user)
    monkeypatch.setattr("cim.automation.care.business_today", lambda: TODAY)
    assert care_run_task.call() == 1
    assert care_run_task.call() == 0  # the second run of the day does nothing
    assert "cim.automation.tasks_care.care_run_task" in PERIODIC
    assert not FollowUp.objects.exists()


def test_plan_validation_names_fields(admin_user, greetings, make_user):
    with pytest.raises(ValidationError) as raised:
        care_plan_create(name="", occasion="nameday", lead_days=99, actor=admin_user)
    assert {"name", "occasion", "lead_days", "templates"} <= set(raised.value.message_dict)
    mixed = MessageTemplate.objects.create(
        name="短信", channel="sms", purpose="marketing", language="en", subject="", body="hi"
    )
    with pytest.raises(ValidationError) as raised:
        care_plan_create(name="混合", occasion="birthday", templates=[greetings["zh-hans"], mixed], actor=admin_user)
    assert "templates" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        care_plan_create(name="两个中文", occasion="birthday", templates=[greetings["zh-hans"]] * 2, actor=admin_user)
    plan = care_plan_create(name="电话", occasion="qixi", action="call_task", actor=admin_user)
    with pytest.raises(ValidationError) as raised:
        care_plan_update(plan=plan, action="greeting", actor=admin_user)
    assert "templates" in raised.value.message_dict
    updated = care_plan_update(plan=plan, action="greeting", templates=[greetings["en"]], actor=admin_user)
    assert updated.action == "greeting" and list(updated.templates.all()) == [greetings["en"]]
    with pytest.raises(PermissionDenied):
        care_plan_create(name="x", occasion="qixi", action="call_task", actor=make_user(Role.SALES, "s2"))


def test_a_plan_whose_templates_went_inactive_reports_an_error(admin_user, greetings):
    guest(admin_user, "王芳")
    plan = care_plan_create(name="生日", occasion="birthday", templates=[greetings["zh-hans"]], actor=admin_user)
    MessageTemplate.objects.update(is_active=False)
    (run,) = care_run(day=TODAY, actor=admin_user)
    assert run.error and CareRun.objects.get(plan=plan).error
    assert not Message.objects.exists()


def test_standard_greeting_templates_are_added_once(admin_user):
    made = care_templates_create(actor=admin_user)
    assert len(made) == 10 and {t.language for t in made} == {"zh-hans", "en"}
    assert care_templates_create(actor=admin_user) == []


def test_gifts_are_recorded_validated_and_erased_with_the_customer(admin_user, make_user):
    fang = make_customer(admin_user, display_name="王芳")
    gift = gift_record(
        customer=fang,
        description="月饼礼盒",
        value=Decimal("288.00"),
        occasion="mid_autumn_festival",
        given_on=date(2026, 9, 20),
        actor=admin_user,
    )
    assert gift.given_by == admin_user and gift.currency == "CNY"
    with pytest.raises(ValidationError) as raised:
        gift_record(
            customer=fang,
            description="",
            value=Decimal("-1"),
            occasion="nameday",
            currency="人民币",
            given_on=date(2099, 1, 1),
            actor=admin_user,
        )
    assert set(raised.value.message_dict) == {"description", "value", "occasion", "currency", "given_on"}
    with pytest.raises(PermissionDenied):
        gift_record(customer=fang, description="x", given_on=date(2026, 1, 1), actor=make_user(Role.MARKETING, "mk"))
    customer_erase(customer=fang, actor=admin_user, reason="数据主体请求")
    gift.refresh_from_db()
    assert gift.description == "" and Gift.objects.count() == 1
