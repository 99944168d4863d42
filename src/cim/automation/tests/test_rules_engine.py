"""Automation rules: triggers record runs set-based, steps execute once each, loops stop, dry run = real run."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cim.activities.models import FollowUp
from cim.audit.models import AuditEvent
from cim.automation import rules as engine
from cim.automation.events import events_dispatch
from cim.automation.models import Event, Rule, RuleRun, RuleStep
from cim.automation.rules import rule_dry_run, rule_run_advance, rule_runs_execute, rules_dates_run
from cim.automation.rules_services import rule_activate, rule_create, rule_update
from cim.customers.models import CustomerTag
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update, customers_tag
from cim.customers.tests.factories import make_customer
from cim.segments.models import Segment, SegmentMember
from cim.segments.services import segment_create

FEMALE = {"match": "all", "rules": [{"field": "gender", "operator": "eq", "value": "female"}]}
VIP = {"match": "all", "rules": [{"field": "tag", "operator": "has_any", "value": ["VIP"]}]}


@pytest.fixture(autouse=True)
def _fresh_index():
    engine.rules_index_reset()
    yield
    engine.rules_index_reset()


def tags(customer) -> set[str]:
    return set(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def active_rule(admin_user, **fields) -> Rule:
    fields.setdefault("name", "规则")
    rule = rule_create(actor=admin_user, **fields)
    return rule_activate(rule=rule, actor=admin_user)


def settle(rounds: int = 10) -> None:
    """What the worker does: dispatch events and execute runs until nothing is left."""
    for _ in range(rounds):
        moved = events_dispatch().events + rule_runs_execute()
        if not moved:
            return


def test_bad_definitions_are_refused_per_field(admin_user):
    with pytest.raises(ValidationError) as error:
        rule_create(
            actor=admin_user,
            name="",
            trigger={"event": "segment.entered"},
            conditions={"match": "all", "rules": [{"field": "nope", "operator": "eq", "value": 1}]},
            steps=[{"action": "add_tag", "tag": ""}, {"action": "explode"}, {"action": "wait"}],
        )
    errors = error.value.message_dict
    assert set(errors) >= {"name", "trigger.segment", "conditions", "steps.1", "steps.2", "steps.3"}


def test_a_tag_trigger_runs_the_steps_for_matching_customers(admin_user):
    active_rule(
        admin_user,
        trigger={"event": "customer.tag_added", "tag": "VIP"},
        conditions=FEMALE,
        steps=[
            {"action": "add_tag", "tag": "贵宾关怀"},
            {"action": "set_field", "field": "value_tier", "value": "high"},
        ],
    )
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    wei = make_customer(admin_user, display_name="李伟", gender="male")
    customers_tag(customer_ids=[fang.pk, wei.pk], add=["VIP"], actor=admin_user)
    settle()
    run = RuleRun.objects.get()
    assert (run.customer_id, run.status) == (fang.pk, RuleRun.Status.DONE)
    assert list(run.steps.values_list("index", "outcome")) == [(0, "done"), (1, "done")]
    fang.refresh_from_db()
    assert "贵宾关怀" in tags(fang) and fang.value_tier == "high"
    assert "贵宾关怀" not in tags(wei)
    # The change is the system's, with the rule named in the audit note.
    update = AuditEvent.objects.filter(action="customer.update", target_id=str(fang.pk)).latest("seq")
    assert update.actor_id is None and "规则" in update.note


def test_nothing_is_recorded_for_events_no_rule_wants(admin_user):
    active_rule(
        admin_user, trigger={"event": "customer.tag_added", "tag": "VIP"}, steps=[{"action": "wait", "days": 1}]
    )
    fang = make_customer(admin_user, display_name="王芳")
    customers_tag(customer_ids=[fang.pk], add=["普通"], actor=admin_user)
    assert not Event.objects.filter(name="customer.tag_added").exists()


def test_a_killed_worker_does_not_repeat_a_step(admin_user):
    rule = active_rule(
        admin_user,
        trigger={"event": "customer.tag_added", "tag": "VIP"},
        steps=[{"action": "create_task", "title": "回访", "due_days": 1}, {"action": "add_tag", "tag": "已回访"}],
    )
    fang = make_customer(admin_user, display_name="王芳")
    customers_tag(customer_ids=[fang.pk], add=["VIP"], actor=admin_user)
    events_dispatch()
    run = RuleRun.objects.get(rule=rule)
    # A worker that did step 0 and died: the step's log and effect were one transaction, the run's place moved.
    real_execute = engine.step_execute
    calls = []

    def dying(**kwargs):
        calls.append(kwargs["instruction"].index)
        if kwargs["instruction"].index == 1:
            raise KeyboardInterrupt
        return real_execute(**kwargs)

    engine.step_execute = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            rule_run_advance(run_id=run.pk)
    finally:
        engine.step_execute = real_execute
    assert FollowUp.objects.filter(customer=fang).count() == 1
    rule_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RuleRun.Status.DONE
    assert FollowUp.objects.filter(customer=fang).count() == 1
    assert list(run.steps.values_list("index", flat=True)) == [0, 1]


def test_branch_and_wait(admin_user):
    rule = active_rule(
        admin_user,
        trigger={"event": "customer.tag_added", "tag": "VIP"},
        steps=[
            {
                "action": "branch",
                "if": FEMALE,
                "then": [{"action": "add_tag", "tag": "女士"}, {"action": "wait", "days": 2}],
                "else": [{"action": "add_tag", "tag": "先生"}],
            },
            {"action": "add_tag", "tag": "完成"},
        ],
    )
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    wei = make_customer(admin_user, display_name="李伟", gender="male")
    customers_tag(customer_ids=[fang.pk, wei.pk], add=["VIP"], actor=admin_user)
    settle()
    assert tags(wei) >= {"先生", "完成"} and "女士" not in tags(wei)
    fang_run = RuleRun.objects.get(rule=rule, customer=fang)
    assert fang_run.status == RuleRun.Status.WAITING and "完成" not in tags(fang)
    rule_runs_execute(now=timezone.now() + timedelta(days=3))
    assert RuleRun.objects.get(pk=fang_run.pk).next_at > timezone.now()  # the wait is on the run, not the caller
    RuleRun.objects.filter(pk=fang_run.pk).update(next_at=timezone.now())
    rule_runs_execute()
    assert tags(fang) >= {"女士", "完成"} and "先生" not in tags(fang)
    assert RuleRun.objects.get(pk=fang_run.pk).status == RuleRun.Status.DONE


def test_two_rules_that_trigger_each_other_stop_at_the_depth(admin_user):
    for name, have, give in (("甲", "A", "B"), ("乙", "B", "A")):
        active_rule(
            admin_user,
            name=name,
            trigger={"event": "customer.tag_added", "tag": have},
            steps=[{"action": "remove_tag", "tag": have}, {"action": "add_tag", "tag": give}],
            rate_minutes=0,
        )
    fang = make_customer(admin_user, display_name="王芳")
    customers_tag(customer_ids=[fang.pk], add=["A"], actor=admin_user)
    settle(rounds=30)
    runs = RuleRun.objects.order_by("id")
    assert list(runs.values_list("depth", flat=True)) == [1, 2, 3, 4]
    assert runs.last().status == RuleRun.Status.STOPPED
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


def test_the_rate_guard_runs_a_rule_once_per_customer_per_period(admin_user):
    for name, have, give in (("甲", "A", "B"), ("乙", "B", "A")):
        active_rule(
            admin_user,
            name=name,
            trigger={"event": "customer.tag_added", "tag": have},
            steps=[{"action": "remove_tag", "tag": have}, {"action": "add_tag", "tag": give}],
            max_depth=10,
        )
    fang = make_customer(admin_user, display_name="王芳")
    customers_tag(customer_ids=[fang.pk], add=["A"], actor=admin_user)
    settle(rounds=30)
    assert RuleRun.objects.count() == 2


def test_dry_run_equals_the_real_run(admin_user):
    people = [
        make_customer(
            admin_user, display_name=f"客户{i}", gender="female" if i % 2 else "male", tags=["VIP"] * (i % 3 == 0)
        )
        for i in range(6)
    ]
    everyone = segment_create(actor=admin_user, name="全部", rules={"match": "all", "rules": []})
    rule = rule_create(
        actor=admin_user,
        name="试运行",
        trigger={"event": "segment.entered", "segment": everyone.pk},
        conditions={"match": "all", "rules": [{"field": "display_name", "operator": "starts_with", "value": "客户"}]},
        steps=[
            {
                "action": "branch",
                "if": FEMALE,
                "then": [{"action": "add_tag", "tag": "VIP"}],
                "else": [{"action": "set_stage", "stage": "loyal"}],
            },
            {"action": "create_task", "title": "回访", "due_days": 3},
            {"action": "remove_tag", "tag": "VIP"},
        ],
    )
    dry = rule_dry_run(rule=rule, segment=everyone, user=admin_user)
    assert dry.affected == 6
    planned = {c.pk: [(s.index, s.action, s.outcome, s.detail) for s in steps] for c, steps in dry.shown}
    rule_activate(rule=rule, actor=admin_user)
    engine.runs_record(rule=rule, candidates=[engine.Candidate(p.pk, "test", 1) for p in people])
    settle()
    real = {
        run.customer_id: [(s.index, s.action, s.outcome, s.detail) for s in run.steps.order_by("index")]
        for run in RuleRun.objects.filter(rule=rule)
    }
    assert real == planned
    assert {outcome for steps in real.values() for _i, _a, outcome, _d in steps} >= {"then", "else", "skipped", "done"}


def test_segment_entered_reacts_to_the_change_of_the_customers_concerned(admin_user):
    women = segment_create(actor=admin_user, name="女性", rules=FEMALE)
    active_rule(
        admin_user,
        trigger={"event": "segment.entered", "segment": women.pk},
        steps=[{"action": "add_tag", "tag": "欢迎"}],
    )
    fang = make_customer(admin_user, display_name="王芳")
    customer_update(customer=fang, data=CustomerInput(gender="female"), actor=admin_user)
    settle()
    assert SegmentMember.objects.filter(segment=women, customer=fang).exists()
    assert "欢迎" in tags(fang)
    assert Segment.objects.get(pk=women.pk).size == 1


def test_tracked_events_reach_the_outbox_only_when_a_rule_listens(admin_user):
    from cim.activities.schemas import TrackingMessage
    from cim.activities.services import SEGMENT_SYSTEM, events_ingest
    from cim.customers.models import ExternalId
    from cim.ingest.sources import event_source_create

    source, _key = event_source_create(name="网站", actor=None)
    fang = make_customer(admin_user, display_name="王芳")
    ExternalId.objects.create(customer=fang, system=SEGMENT_SYSTEM, value="u-1")
    active_rule(
        admin_user,
        trigger={"event": "event.tracked", "name": "Cart Abandoned"},
        steps=[{"action": "add_tag", "tag": "弃购"}],
    )
    messages = [
        TrackingMessage.model_validate({"type": "track", "userId": "u-1", "event": name, "messageId": name})
        for name in ("Page Viewed", "Cart Abandoned")
    ]
    events_ingest(source=source, messages=messages)
    assert list(Event.objects.filter(name="event.tracked").values_list("customer_id", "data")) == [
        (fang.pk, {"name": "Cart Abandoned"})
    ]
    settle()
    assert "弃购" in tags(fang)


def test_date_rules_run_once_a_day(admin_user):
    today = date(2026, 12, 3)
    fang = make_customer(admin_user, display_name="王芳", birthday=date(1990, 12, 3))
    make_customer(admin_user, display_name="李伟", birthday=date(1990, 12, 4))
    active_rule(admin_user, trigger={"event": "date", "kind": "birthday"}, steps=[{"action": "add_tag", "tag": "寿星"}])
    assert rules_dates_run(today=today) == 1
    assert rules_dates_run(today=today) == 0
    Rule.objects.update(dates_done_on=None)
    assert rules_dates_run(today=today) == 0  # keyed by the day: the same customers are not run twice
    rule_runs_execute()
    assert list(RuleRun.objects.values_list("customer_id", "trigger_key")) == [(fang.pk, "date:2026-12-03")]
    assert "寿星" in tags(fang)


def test_changing_the_steps_stops_unfinished_runs(admin_user):
    rule = active_rule(
        admin_user, trigger={"event": "customer.tag_added", "tag": "VIP"}, steps=[{"action": "wait", "days": 3}]
    )
    fang = make_customer(admin_user, display_name="王芳")
    customers_tag(customer_ids=[fang.pk], add=["VIP"], actor=admin_user)
    settle()
    assert RuleRun.objects.get().status == RuleRun.Status.WAITING
    rule_update(rule=rule, actor=admin_user, steps=[{"action": "add_tag", "tag": "新"}])
    assert RuleRun.objects.get().status == RuleRun.Status.STOPPED
    assert RuleStep.objects.count() == 1
