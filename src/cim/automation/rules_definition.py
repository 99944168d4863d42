"""What an automation rule is made of: the triggers, date kinds and actions it may use, and the checks that turn
what a person or an API client wrote into a rule the engine (cim.automation.rules) can run."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.accounts.models import User
from cim.automation.calendar import CUSTOMER_DATE_FIELDS, DateKind, Festival
from cim.automation.models import MessageTemplate, WebhookEndpoint
from cim.automation.webhooks import EVENT_TYPE as WEBHOOK_EVENT_TYPE
from cim.customers import choices as c
from cim.customers.schemas import CustomerInput
from cim.quality.normalize import clean_text
from cim.segments.models import Segment
from cim.segments.rules import rules_validate

MAX_STEPS = 50
MAX_BRANCH_DEPTH = 3


@dataclass(frozen=True)
class TriggerType:
    event: str
    label: Promise
    # Optional filters the trigger may set, each checked against the event's data: option → data key.
    options: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


TRIGGERS: dict[str, TriggerType] = {
    t.event: t
    for t in (
        TriggerType("customer.created", gettext_lazy("Customer created")),
        TriggerType("customer.updated", gettext_lazy("Customer changed"), ("field",)),
        TriggerType("customer.tag_added", gettext_lazy("Tag added"), ("tag",)),
        TriggerType("customer.tag_removed", gettext_lazy("Tag removed"), ("tag",)),
        TriggerType("customer.stage_changed", gettext_lazy("Lifecycle stage changed"), ("stage",)),
        TriggerType("segment.entered", gettext_lazy("Entered a segment"), ("segment",), ("segment",)),
        TriggerType("segment.left", gettext_lazy("Left a segment"), ("segment",), ("segment",)),
        TriggerType("order.placed", gettext_lazy("Order placed")),
        TriggerType("order.refunded", gettext_lazy("Order refunded")),
        TriggerType("ticket.created", gettext_lazy("Ticket created")),
        TriggerType("ticket.resolved", gettext_lazy("Ticket resolved")),
        TriggerType("survey.answered", gettext_lazy("Survey answered"), ("survey",)),
        TriggerType("form.submitted", gettext_lazy("Form submitted"), ("form",)),
        TriggerType("event.tracked", gettext_lazy("Event tracked"), ("name",), ("name",)),
        TriggerType("date", gettext_lazy("A date"), ("kind", "field", "days"), ("kind",)),
    )
}

# A date trigger's kinds: a customer's own day (cim.automation.calendar.DateKind) or a festival everyone shares.
DATE_KINDS: dict[str, Promise] = {**dict(DateKind.choices), **dict(Festival.choices)}
# Kinds that count from a date field of the customer.
FIELD_KINDS = (DateKind.ANNIVERSARY, DateKind.DATE_FIELD)
SINCE_KINDS = (DateKind.DAYS_SINCE_LAST_ORDER, DateKind.DAYS_SINCE_LAST_CONTACT)
# Date fields a `wait` step may wait until (fields of the rule language).
DATE_FIELDS = ("created_at", "reviewed_at", "first_order_at", "last_order_at")

# Fields a `set_field` step may set: plain choices and texts of the customer, through customer_update.
SETTABLE_FIELDS = (
    "customer_type",
    "value_tier",
    "region",
    "industry",
    "company_size",
    "source_channel",
    "job_title",
    "company",
)

ACTIONS: dict[str, Promise] = {
    "set_field": gettext_lazy("Set a field"),
    "add_tag": gettext_lazy("Add a tag"),
    "remove_tag": gettext_lazy("Remove a tag"),
    "set_stage": gettext_lazy("Change the lifecycle stage"),
    "set_owner": gettext_lazy("Change the owner"),
    "create_task": gettext_lazy("Create a follow-up task"),
    "add_to_list": gettext_lazy("Add to a static list"),
    "send": gettext_lazy("Send an email, SMS or WeChat message"),
    "webhook": gettext_lazy("Call a webhook"),
    "wait": gettext_lazy("Wait"),
    "branch": gettext_lazy("If … then … else"),
}


# ---- validation ----


class _Problems:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


def _int(value, low: int, high: int) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def trigger_validate(trigger) -> dict:
    """A trigger checked and normalised; raises ValidationError keyed `trigger.<option>`."""
    problems = _Problems()
    if not isinstance(trigger, dict) or trigger.get("event") not in TRIGGERS:
        raise ValidationError({"trigger": [_("Choose what starts the rule.")]})
    kind = TRIGGERS[trigger["event"]]
    clean: dict = {"event": kind.event}
    for option in kind.options:
        value = trigger.get(option)
        if value in (None, ""):
            if option in kind.required:
                problems.add(f"trigger.{option}", _("This trigger needs a value here."))
            continue
        clean[option] = value
    if kind.event in ("segment.entered", "segment.left") and "segment" in clean:
        pk = _int(clean["segment"], 1, 2**62)
        if pk is None or not Segment.objects.filter(pk=pk).exists():
            problems.add("trigger.segment", _("Choose an existing segment."))
        clean["segment"] = pk
    for option in ("survey", "form"):
        if option in clean:
            clean[option] = _int(clean[option], 1, 2**62)
            if clean[option] is None:
                problems.add(f"trigger.{option}", _("Give an id."))
    if kind.event == "customer.updated" and clean.get("field", "") not in ("", *CustomerInput.model_fields):
        problems.add("trigger.field", _("Choose a field of the customer."))
    if "stage" in clean and clean["stage"] not in c.LifecycleStage.values:
        problems.add("trigger.stage", _("Choose a lifecycle stage."))
    for option in ("tag", "name"):
        if option in clean:
            clean[option] = clean_text(str(clean[option]))[:200]
    if kind.event == "date":
        _date_trigger(trigger, clean, problems)
    if problems.errors:
        raise ValidationError(problems.errors)
    return clean


def _date_trigger(trigger: dict, clean: dict, problems: _Problems) -> None:
    """`kind`; `days`: how many days after the customer's day (negative: before; for "days since", how many days
    since); `field` for the kinds counting from a date field."""
    date_kind = trigger.get("kind")
    clean.pop("field", None)
    clean.pop("days", None)
    if date_kind not in DATE_KINDS:
        problems.add("trigger.kind", _("Choose which date starts the rule."))
        return
    if date_kind in FIELD_KINDS:
        if trigger.get("field") not in CUSTOMER_DATE_FIELDS:
            problems.add("trigger.field", _("Choose a date field."))
        clean["field"] = trigger.get("field")
    low = 1 if date_kind in SINCE_KINDS else -365
    days = _int(trigger.get("days", 0 if low < 0 else None), low, 3650)
    if days is None:
        problems.add("trigger.days", _("Give a number of days from %(low)s to 3650.") % {"low": low})
    clean["days"] = days


def steps_validate(steps) -> list[dict]:
    """Steps checked and normalised; raises ValidationError keyed `steps.<position>` ("steps.2.then.1")."""
    problems = _Problems()
    if not isinstance(steps, list) or not steps:
        raise ValidationError({"steps": [_("Add at least one step.")]})
    count = [0]
    clean = _steps(steps, "", 1, problems, count)
    if count[0] > MAX_STEPS:
        problems.add("steps", _("At most %(n)s steps.") % {"n": MAX_STEPS})
    if problems.errors:
        raise ValidationError(problems.errors)
    return clean


def _steps(steps, path: str, depth: int, problems: _Problems, count: list[int]) -> list[dict]:
    clean = []
    for position, step in enumerate(steps if isinstance(steps, list) else [], 1):
        count[0] += 1
        key = f"steps.{path}{position}"
        action = step.get("action") if isinstance(step, dict) else None
        if action not in ACTIONS:
            problems.add(key, _("Choose an action."))
            continue
        clean.append(_step_validate(step, action, key, path + str(position), depth, problems, count))
    return clean


def _step_validate(step: dict, action: str, key: str, path: str, depth: int, problems, count) -> dict:
    def text(name: str, limit: int) -> str:
        value = clean_text(str(step.get(name) or ""))
        if not 1 <= len(value) <= limit:
            problems.add(key, _("Give a value of 1 to %(n)s characters.") % {"n": limit})
        return value

    if action == "set_field":
        if step.get("field") not in SETTABLE_FIELDS:
            problems.add(key, _("Choose a field to set."))
            return {"action": action}
        value = clean_text(str(step.get("value") or ""))
        try:
            CustomerInput.model_validate({step["field"]: value or None})
        except Exception:
            problems.add(key, _("This value does not fit the field."))
        return {"action": action, "field": step["field"], "value": value}
    if action in ("add_tag", "remove_tag"):
        return {"action": action, "tag": text("tag", 50)}
    if action == "set_stage":
        if step.get("stage") not in c.LifecycleStage.values:
            problems.add(key, _("Choose a lifecycle stage."))
        return {"action": action, "stage": step.get("stage")}
    if action == "set_owner":
        owner = _int(step.get("owner"), 1, 2**62)
        if owner is None or not User.objects.filter(pk=owner, is_active=True).exists():
            problems.add(key, _("Choose an active user."))
        return {"action": action, "owner": owner}
    if action == "create_task":
        due_days = _int(step.get("due_days", 1), 0, 365)
        if due_days is None:
            problems.add(key, _("Give a number of days from 0 to 365."))
        return {"action": action, "title": text("title", 200), "due_days": due_days}
    if action == "add_to_list":
        pk = _int(step.get("segment"), 1, 2**62)
        if pk is None or not Segment.objects.filter(pk=pk, kind=Segment.Kind.STATIC).exists():
            problems.add(key, _("Choose a static list."))
        return {"action": action, "segment": pk}
    if action == "send":
        name = clean_text(str(step.get("template") or ""))
        if not MessageTemplate.objects.filter(name=name, is_active=True).exists():
            problems.add(key, _("Choose an active message template."))
        return {"action": action, "template": name}
    if action == "webhook":
        pk = _int(step.get("endpoint"), 1, 2**62)
        if pk is None or not WebhookEndpoint.objects.filter(pk=pk).exists():
            problems.add(key, _("Choose a webhook endpoint."))
        event_type = str(step.get("event_type") or "rule.step")
        if not WEBHOOK_EVENT_TYPE.match(event_type) or len(event_type) > 60:
            problems.add(key, _("An event type is lower-case words joined by dots."))
        return {"action": action, "endpoint": pk, "event_type": event_type}
    if action == "wait":
        if step.get("field"):
            if step["field"] not in DATE_FIELDS:
                problems.add(key, _("Choose a date field."))
            return {"action": action, "field": step["field"]}
        days = _int(step.get("days"), 1, 3650)
        if days is None:
            problems.add(key, _("Give a number of days from 1 to 3650, or a date field."))
        return {"action": action, "days": days}
    # branch
    if depth >= MAX_BRANCH_DEPTH:
        problems.add(key, _("Branches nest at most %(n)s deep.") % {"n": MAX_BRANCH_DEPTH})
    try:
        condition = rules_validate(step.get("if") or {"match": "all", "rules": []})
    except ValidationError as error:
        condition = {"match": "all", "rules": []}
        for name, messages in error.message_dict.items():
            for message in messages:
                problems.add(f"{key}.if", f"{name}: {message}")
    return {
        "action": action,
        "if": condition,
        "then": _steps(step.get("then") or [], f"{path}.then.", depth + 1, problems, count),
        "else": _steps(step.get("else") or [], f"{path}.else.", depth + 1, problems, count),
    }


def conditions_validate(conditions) -> dict:
    try:
        return rules_validate(conditions or {"match": "all", "rules": []})
    except ValidationError as error:
        raise ValidationError(
            {"conditions": [f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items()]}
        ) from None
