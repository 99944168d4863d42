"""Automation rules (自动化): trigger → conditions → steps, per customer.

A rule's trigger names an event of the catalogue (cim.automation.events) with an optional filter (which tag, which
field, which segment...) or a date (birthdays, N days before/after a date field, N days since the last order or
contact). Its conditions are a tree of the segment rule language, evaluated set-based over the customers an event
batch names. Its steps are an ordered list; a `branch` step holds `then` and `else` lists, a `wait` step pauses the
run for N days or until a date field. What each may hold, and the checks, are in cim.automation.rules_definition.

The events consumer only records a `RuleRun` per matching customer (inside the dispatch transaction); the
background job `rule_runs_execute` then carries each run forward one step per transaction, writing the step's
`RuleStep` in the same transaction as its effect, so a worker killed mid-run resumes where it stopped without
repeating an effect. Steps that hand work elsewhere (messages, webhooks) pass a key unique to the run and step.

Loop guards: an event published while a step executes carries the run's depth (`rule_depth`), and a run deeper
than its rule's `max_depth` is stopped; a rule runs at most once per customer every `rate_minutes`.

A dry run walks the same steps with `dry=True`: every decision (branch, whether a tag is already there) is made
by the same functions, only the effects are left out.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.automation.calendar import customers_on_date
from cim.automation.events import caused_by_rule, event_consumer
from cim.automation.messaging import messages_queue
from cim.automation.models import Event, MessageTemplate, Rule, RuleRun, RuleStep, WebhookEndpoint
from cim.automation.webhooks import webhook_send
from cim.customers.models import Customer, CustomerTag
from cim.customers.schemas import CustomerInput
from cim.segments.models import Segment, SegmentMember
from cim.segments.rules import field_catalogue, rules_condition

logger = logging.getLogger(__name__)

# How long a process trusts its copy of what active rules listen to; a change in the same process is seen at once.
INDEX_SECONDS = 5.0

# Where each filter is found in an event's data, and how it is compared.
_DATA_KEYS = {"tag": "tag", "stage": "to", "segment": "segment", "survey": "survey", "form": "form", "name": "name"}

# Changes after which the dynamic segments that rules watch are re-evaluated for the customers concerned.
WATCH_EVENTS = frozenset({"customer.created", "customer.updated", "customer.tag_added", "customer.tag_removed"})


# ---- the program: steps with branches flattened into jumps, so a run's place is one number ----


@dataclass(frozen=True)
class Instruction:
    index: int
    label: str  # the step's position in the editor: "2", "2.then.1"
    step: dict
    # For a branch: where its `else` begins; for a jump: where to go.
    target: int = 0


def program_compile(steps: Sequence[dict]) -> list[Instruction]:
    program: list[Instruction] = []

    def emit(block: Sequence[dict], prefix: str) -> None:
        for position, step in enumerate(block, 1):
            label = f"{prefix}{position}"
            if step["action"] != "branch":
                program.append(Instruction(len(program), label, step))
                continue
            at = len(program)
            program.append(Instruction(at, label, step))
            emit(step.get("then", []), f"{label}.then.")
            jump = None
            if step.get("else"):
                jump = len(program)
                program.append(Instruction(jump, label, {"action": "jump"}))
            program[at] = Instruction(at, label, step, target=len(program))
            emit(step.get("else", []), f"{label}.else.")
            if jump is not None:
                program[jump] = Instruction(jump, label, {"action": "jump"}, target=len(program))

    emit(steps, "")
    return program


# ---- what listens: cached per process ----


@dataclass
class _Index:
    triggers: dict[str, list[dict]]
    watched_segments: frozenset[int]
    loaded_at: float


_index_cache: _Index | None = None


def rules_index_reset() -> None:
    """Forget what active rules listen to (a rule changed); the next question reloads it."""
    global _index_cache
    _index_cache = None


def _index() -> _Index:
    global _index_cache
    if _index_cache is None or time.monotonic() - _index_cache.loaded_at > INDEX_SECONDS:
        triggers: dict[str, list[dict]] = defaultdict(list)
        for trigger in Rule.objects.filter(is_active=True).values_list("trigger", flat=True):
            triggers[trigger.get("event", "")].append(trigger)
        segments = {t["segment"] for name in ("segment.entered", "segment.left") for t in triggers.get(name, [])}
        dynamic = Segment.objects.filter(pk__in=segments, kind=Segment.Kind.DYNAMIC).values_list("pk", flat=True)
        _index_cache = _Index(dict(triggers), frozenset(dynamic), time.monotonic())
    return _index_cache


def trigger_matches(trigger: dict, data: dict) -> bool:
    for option, key in _DATA_KEYS.items():
        if option in trigger and data.get(key) != trigger[option]:
            return False
    return "field" not in trigger or trigger["field"] in data.get("fields", ())


def rules_wanted(name: str, data: dict) -> bool:
    """Whether an active rule reacts to event `name` with `data`; asked by every publisher, so answered from the
    cached index."""
    index = _index()
    if name in WATCH_EVENTS and index.watched_segments:
        return True
    return any(trigger_matches(trigger, data) for trigger in index.triggers.get(name, ()))


# ---- recording runs ----


def current_candidates(ids, conditions: dict):
    """The customers among `ids` (a list or a subquery of ids) who may run and meet `conditions`."""
    from cim.segments.services import current_customers

    return current_customers().filter(pk__in=ids).filter(rules_condition(conditions or {"rules": []}))


@dataclass(frozen=True)
class Candidate:
    customer_id: int
    trigger_key: str
    depth: int
    event_id: int | None = None


def runs_record(
    *, rule: Rule, candidates: Sequence[Candidate], now: datetime | None = None, checked: bool = False
) -> int:
    """Record a run of `rule` for each candidate whose customer meets the conditions (already `checked` by the
    caller's selection, or checked here), set-based; runs deeper than the rule allows are recorded as stopped;
    customers run within `rate_minutes` are passed over. Returns how many runs will execute."""
    now = now or timezone.now()
    if not candidates:
        return 0
    ids = list({cand.customer_id for cand in candidates})
    meeting = set(ids) if checked else set(current_candidates(ids, rule.conditions).values_list("pk", flat=True))
    recent: set[int] = set()
    if rule.rate_minutes:
        runs = RuleRun.objects.filter(rule=rule, created_at__gte=now - timedelta(minutes=rule.rate_minutes))
        # A few customers (an event batch) are looked up by id; a whole day's selection reads the recent runs.
        if len(meeting) <= 5000:
            runs = runs.filter(customer_id__in=meeting)
        recent = set(runs.exclude(status=RuleRun.Status.STOPPED).values_list("customer_id", flat=True))
    rows, seen = [], set()
    for cand in candidates:
        if cand.customer_id not in meeting or cand.customer_id in recent:
            continue
        stopped = cand.depth > rule.max_depth
        if not stopped and rule.rate_minutes:
            if cand.customer_id in seen:
                continue
            seen.add(cand.customer_id)
        rows.append(
            RuleRun(
                rule=rule,
                customer_id=cand.customer_id,
                event_id=cand.event_id,
                trigger_key=cand.trigger_key,
                depth=cand.depth,
                status=RuleRun.Status.STOPPED if stopped else RuleRun.Status.PENDING,
                error=_("Stopped: rules caused one another more than %(n)s deep.") % {"n": rule.max_depth}
                if stopped
                else "",
                next_at=None if stopped else now,
                finished_at=now if stopped else None,
            )
        )
    RuleRun.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
    pending = sum(1 for row in rows if row.status == RuleRun.Status.PENDING)
    if pending:
        _execute_after_commit()
    return pending


def _queue_execute() -> None:
    from cim.automation.tasks_rules import rule_runs_execute_task

    try:
        rule_runs_execute_task.enqueue()
    except Exception:  # the queue being away must not fail the dispatch; the periodic run picks the runs up
        logger.warning("Could not queue the rule runs; the periodic run will take them", exc_info=True)


def _execute_after_commit() -> None:
    from django.db import connection

    if not any(hook[1] is _queue_execute for hook in connection.run_on_commit):
        transaction.on_commit(_queue_execute)


@event_consumer("rules", wants=rules_wanted)
def rules_take(events: Sequence[Event]) -> None:
    """Inside the dispatch transaction: re-evaluate the watched segments for the customers that changed, and
    record the runs of every rule an event triggers."""
    index = _index()
    if index.watched_segments:
        changed: dict[int, set[int]] = defaultdict(set)
        for event in events:
            if event.name in WATCH_EVENTS and event.customer_id:
                changed[event.data.get("rule_depth", 0)].add(event.customer_id)
        for depth, ids in changed.items():
            with caused_by_rule(depth):
                segments_watch_refresh(segment_ids=index.watched_segments, customer_ids=ids)
    names = {event.name for event in events} & set(index.triggers)
    if not names:
        return
    for rule in Rule.objects.filter(is_active=True, trigger__event__in=names):
        candidates = [
            Candidate(event.customer_id, f"event:{event.pk}", event.data.get("rule_depth", 0) + 1, event.pk)
            for event in events
            if event.name == rule.trigger["event"] and event.customer_id and trigger_matches(rule.trigger, event.data)
        ]
        runs_record(rule=rule, candidates=candidates)


def segments_watch_refresh(*, segment_ids: Iterable[int], customer_ids: set[int]) -> None:
    """Bring the watched dynamic segments' membership of just these customers up to date (publishing
    segment.entered/left), so a segment trigger reacts within seconds instead of at the hourly refresh."""
    from cim.segments.services import segment_refresh_customers

    for segment in Segment.objects.filter(pk__in=list(segment_ids), kind=Segment.Kind.DYNAMIC):
        segment_refresh_customers(segment=segment, customer_ids=customer_ids)


# ---- dates ----


def _today() -> date:
    return timezone.localdate()


def date_customers(trigger: dict, on: date):
    """The customers a date trigger selects on day `on` (the care calendar's selection, set-based)."""
    return customers_on_date(
        kind=trigger["kind"], on=on, offset_days=trigger.get("days") or 0, field=trigger.get("field")
    ).values("pk")


def rules_dates_run(*, today: date | None = None) -> int:
    """Evaluate every active date rule once per day (the hourly job skips rules already done today); the runs are
    keyed by the day, so a repeat records none twice. Returns how many runs were recorded."""
    today = today or _today()
    recorded = 0
    for rule in Rule.objects.filter(is_active=True, trigger__event="date").exclude(dates_done_on=today):
        with transaction.atomic():
            rule = Rule.objects.select_for_update().get(pk=rule.pk)
            if rule.dates_done_on == today or not rule.is_active:
                continue
            selected = date_customers(rule.trigger, today)
            ids = list(current_candidates(selected, rule.conditions).values_list("pk", flat=True).order_by())
            key = f"date:{today.isoformat()}"
            recorded += runs_record(rule=rule, candidates=[Candidate(pk, key, 1) for pk in ids], checked=True)
            Rule.objects.filter(pk=rule.pk).update(dates_done_on=today)
    return recorded


# ---- executing steps ----


@dataclass(frozen=True)
class StepResult:
    outcome: str
    detail: str
    next_index: int
    wait_until: datetime | None = None


def _note(rule: Rule) -> str:
    return f"rule:{rule.pk} {rule.name}"[:200]


def _customer_value(customer: Customer, field: str):
    lookup = field_catalogue()[field].lookup
    value = customer
    for part in lookup.split("__"):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


@dataclass
class Overlay:
    """What a dry run's earlier steps would have changed, so later steps decide as they would after them."""

    tags: dict[str, bool]
    fields: dict[str, object]
    lists: set[int]


def step_execute(
    *,
    rule: Rule,
    instruction: Instruction,
    customer: Customer,
    key: str,
    run_id: int | None = None,
    dry: Overlay | None = None,
) -> StepResult:
    """Decide what one step does for one customer and do it, or with `dry` (the changes of the earlier steps),
    only decide. Decisions (a branch, whether the change is already there) are the same either way, so a dry
    run equals the real run; a branch sees the customer as stored."""
    step = instruction.step
    action = step["action"]
    after = instruction.index + 1
    from cim.customers.services import customer_update, customers_tag

    if action == "branch":
        held = current_candidates([customer.pk], step["if"]).exists()
        if held:
            return StepResult(RuleStep.Outcome.BRANCH_THEN, "", after)
        return StepResult(RuleStep.Outcome.BRANCH_ELSE, "", instruction.target)
    if action == "wait":
        if "days" in step:
            until = timezone.now() + timedelta(days=step["days"])
            detail = f"{step['days']}d"
        else:
            value = _customer_value(customer, step["field"])
            if value is None:
                return StepResult(RuleStep.Outcome.SKIPPED, step["field"], after)
            until = (
                value
                if isinstance(value, datetime)
                else timezone.make_aware(datetime.combine(value, datetime.min.time()))
            )
            detail = step["field"]
        if until <= timezone.now():
            return StepResult(RuleStep.Outcome.SKIPPED, detail, after)
        return StepResult(RuleStep.Outcome.WAITING, detail, after, wait_until=None if dry else until)
    if action in ("set_field", "set_stage", "set_owner"):
        field, value = {
            "set_field": lambda: (step.get("field"), step.get("value") or None),
            "set_stage": lambda: ("lifecycle_stage", step.get("stage")),
            "set_owner": lambda: ("owner_id", step.get("owner")),
        }[action]()
        detail = f"{field}={value}" if action != "set_field" else field
        current = dry.fields.get(field, getattr(customer, field)) if dry else getattr(customer, field)
        if (current or None) == value:
            return StepResult(RuleStep.Outcome.SKIPPED, detail, after)
        if dry:
            dry.fields[field] = value
        else:
            customer_update(
                customer=customer, data=CustomerInput.model_validate({field: value}), actor=None, note=_note(rule)
            )
        return StepResult(RuleStep.Outcome.DONE, detail, after)
    if action in ("add_tag", "remove_tag"):
        if dry and step["tag"] in dry.tags:
            has = dry.tags[step["tag"]]
        else:
            has = CustomerTag.objects.filter(customer=customer, tag__name=step["tag"]).exists()
        sign = "+" if action == "add_tag" else "-"
        if has == (action == "add_tag"):
            return StepResult(RuleStep.Outcome.SKIPPED, f"{sign}{step['tag']}", after)
        if dry:
            dry.tags[step["tag"]] = action == "add_tag"
        else:
            change = {"add": [step["tag"]]} if action == "add_tag" else {"remove": [step["tag"]]}
            customers_tag(customer_ids=[customer.pk], actor=None, note=_note(rule), **change)
        return StepResult(RuleStep.Outcome.DONE, f"{sign}{step['tag']}", after)
    if action == "create_task":
        if not dry:
            from cim.activities.follow_ups import follow_up_create

            follow_up_create(
                customer=customer,
                title=step["title"],
                due_at=timezone.now() + timedelta(days=step["due_days"]),
                actor=None,
                owner=customer.owner if customer.owner_id else None,
                notes=_note(rule),
            )
        return StepResult(RuleStep.Outcome.DONE, f"+{step['due_days']}d", after)
    if action == "add_to_list":
        member = SegmentMember.objects.filter(segment_id=step["segment"], customer=customer).exists()
        detail = f"segment:{step['segment']}"
        if member or (dry and step["segment"] in dry.lists):
            return StepResult(RuleStep.Outcome.SKIPPED, detail, after)
        if dry:
            dry.lists.add(step["segment"])
        else:
            from cim.segments.services import segment_members_add

            segment_members_add(segment=Segment.objects.get(pk=step["segment"]), customer_ids=[customer.pk], actor=None)
        return StepResult(RuleStep.Outcome.DONE, detail, after)
    if action == "send":
        # The message is recorded queued or suppressed (consent, caps, no address) by messaging, once per key.
        if not dry:
            templates = {t.language: t for t in MessageTemplate.objects.filter(name=step["template"], is_active=True)}
            messages_queue(
                customer_ids=[customer.pk],
                template=templates,
                key_for=lambda pk: key,
                origin="rule",
                rule_run_id=run_id,
                actor=None,
            )
        return StepResult(RuleStep.Outcome.DONE, step["template"], after)
    if action == "webhook":
        # Recorded as a delivery (sent by the webhook sender), once per key; the payload names ids only.
        if not dry:
            webhook_send(
                endpoint=WebhookEndpoint.objects.get(pk=step["endpoint"]),
                event_type=step["event_type"],
                payload={"rule": rule.pk, "run": run_id},
                key=key,
                customer_id=customer.pk,
            )
        return StepResult(RuleStep.Outcome.DONE, f"endpoint:{step['endpoint']}", after)
    raise ValueError(f"unknown action {action}")


def step_key(run: RuleRun, index: int) -> str:
    """The idempotency key of a step's hand-off elsewhere (a message, a webhook delivery)."""
    return f"rule:{run.rule_id}:run:{run.pk}:step:{index}"


def rule_run_advance(*, run_id: int, now: datetime | None = None) -> RuleRun | None:
    """Carry one run forward, one step per transaction, until it waits, fails or ends."""
    while True:
        with transaction.atomic():
            run = (
                RuleRun.objects.select_for_update(of=("self",))
                .select_related("rule", "customer")
                .filter(pk=run_id)
                .first()
            )
            now = timezone.now()
            if run is None or run.status not in (RuleRun.Status.PENDING, RuleRun.Status.WAITING):
                return run
            if not run.rule.is_active or (run.next_at and run.next_at > now):
                return run
            program = program_compile(run.rule.steps)
            run.started_at = run.started_at or now
            if run.current_step >= len(program):
                _finish(run, RuleRun.Status.DONE, now)
                return run
            instruction = program[run.current_step]
            if instruction.step["action"] == "jump":
                run.current_step = instruction.target
                run.status = RuleRun.Status.PENDING
                run.save(update_fields=["current_step", "status", "started_at"])
                continue
            customer = run.customer
            if customer.merged_into_id or customer.is_archived:
                _finish(run, RuleRun.Status.FAILED, now, _("The customer was archived or merged."))
                return run
            try:
                with transaction.atomic(), caused_by_rule(run.depth):
                    result = step_execute(
                        rule=run.rule,
                        instruction=instruction,
                        customer=customer,
                        key=step_key(run, instruction.index),
                        run_id=run.pk,
                    )
            except Exception as error:  # a step's failure is the run's outcome, recorded, never the worker's
                message = _error_text(error)
                RuleStep.objects.create(
                    run=run,
                    index=instruction.index,
                    action=instruction.step["action"],
                    outcome=RuleStep.Outcome.FAILED,
                    error=message,
                )
                _finish(run, RuleRun.Status.FAILED, now, message)
                return run
            RuleStep.objects.create(
                run=run,
                index=instruction.index,
                action=instruction.step["action"],
                outcome=result.outcome,
                detail=result.detail[:300],
            )
            run.current_step = result.next_index
            if result.wait_until is not None:
                run.status = RuleRun.Status.WAITING
                run.next_at = result.wait_until
                run.save(update_fields=["current_step", "status", "next_at", "started_at"])
                return run
            run.status = RuleRun.Status.PENDING
            run.save(update_fields=["current_step", "status", "started_at"])


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError) and hasattr(error, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())[:500]
    if isinstance(error, ValidationError):
        return " ".join(error.messages)[:500]
    return f"{type(error).__name__}: {error}"[:500]


def _finish(run: RuleRun, status: str, now: datetime, error: str = "") -> None:
    run.status = status
    run.finished_at = now
    run.next_at = None
    run.error = error[:500]
    run.save(update_fields=["status", "finished_at", "next_at", "error", "started_at"])


def rule_runs_execute(*, limit: int = 500, now: datetime | None = None) -> int:
    """Carry forward the runs that are due (new ones, and waits that have ended); returns how many were taken."""
    now = now or timezone.now()
    ids = list(
        RuleRun.objects.filter(
            status__in=(RuleRun.Status.PENDING, RuleRun.Status.WAITING), next_at__lte=now, rule__is_active=True
        )
        .order_by("next_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        rule_run_advance(run_id=pk)
    return len(ids)


# ---- dry run ----


@dataclass(frozen=True)
class PlannedStep:
    index: int
    label: str
    action: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class DryRun:
    affected: int
    shown: list[tuple[Customer, list[PlannedStep]]]


def steps_plan(*, rule: Rule, customer: Customer) -> list[PlannedStep]:
    """The steps a run of `rule` would take for `customer` now, as the executor decides them (waits assumed over)."""
    program = program_compile(rule.steps)
    planned, index = [], 0
    overlay = Overlay(tags={}, fields={}, lists=set())
    while index < len(program):
        instruction = program[index]
        if instruction.step["action"] == "jump":
            index = instruction.target
            continue
        result = step_execute(rule=rule, instruction=instruction, customer=customer, key="", dry=overlay)
        planned.append(PlannedStep(index, instruction.label, instruction.step["action"], result.outcome, result.detail))
        index = result.next_index
    return planned


def rule_dry_run(*, rule: Rule, segment: Segment, user, limit: int = 50) -> DryRun:
    """Who in `segment` a run of `rule` would reach (the conditions applied), and the steps the first `limit` of
    those the user may see would get. Nothing is written."""
    members = SegmentMember.objects.filter(segment=segment).values("customer_id")
    affected = current_candidates(members, rule.conditions)
    shown_qs = affected.filter(pk__in=Customer.objects.visible_to(user).values("pk")).order_by("pk")[:limit]
    shown = [(customer, steps_plan(rule=rule, customer=customer)) for customer in shown_qs]
    return DryRun(affected=affected.count(), shown=shown)
