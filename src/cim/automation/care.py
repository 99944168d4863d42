"""Customer care (客户关怀): care plans, the daily run that greets customers or asks their owners to call, gifts.

A plan names an occasion (a birthday, a lunar birthday, the customer anniversary, a festival), how many days ahead
to act, and what to do: queue a greeting from its templates (one per language) through `messages_queue`, which
checks consent, restrictions, caps and quiet hours, or give the customer's owner a call task. Both are keyed
`care:<occasion>:<occasion day>:customer:<id>`, so a run repeated the same day (a second worker, a retry, the
hourly schedule) sends and creates nothing twice. Call tasks fall due on a workday: a run on a weekend or a
statutory holiday makes them due on the next workday (chinese-calendar). See docs/care.md.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.activities.follow_up_selectors import follow_up_default_owner
from cim.activities.follow_ups import follow_up_create
from cim.activities.models import Priority
from cim.analytics.churn import churn_default_owner
from cim.audit.services import audit_record
from cim.automation.calendar import business_today, customers_on_date, next_workday
from cim.automation.messaging import messages_queue
from cim.automation.models import CarePlan, CareRun, CareTask, Gift, MessageTemplate
from cim.automation.models.care import GIFT_OCCASION_CHOICES, OCCASION_CHOICES, CareAction
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.privacy.models import ConsentPurpose
from cim.privacy.selectors import restricted_ids
from cim.segments.models import Segment, SegmentMember

logger = logging.getLogger(__name__)

MAX_LEAD_DAYS = 60
# When a care call task falls due, in the business time zone: mid-morning of its workday.
CALL_DUE_TIME = time(10, 0)
OCCASIONS = dict(OCCASION_CHOICES)
GIFT_OCCASIONS = dict(GIFT_OCCASION_CHOICES)
PLAN_FIELDS = ("name", "occasion", "action", "lead_days", "segment", "task_title", "priority", "is_active")


def _require(actor, perm: str) -> None:
    if actor is not None and not has_perm(actor, perm):
        raise PermissionDenied(perm)


def care_key(occasion: str, occasion_day: date, customer_id: int) -> str:
    """The idempotency key of a customer's care for one occasion on one day, for greetings and call tasks alike."""
    return f"care:{occasion}:{occasion_day.isoformat()}:customer:{customer_id}"


# --- plans ------------------------------------------------------------------------------------------------------


def _clean_plan(values: dict, templates: list[MessageTemplate] | None, current: CarePlan | None) -> dict:
    errors: dict[str, list[str]] = {}
    name = (values.get("name") or "").strip()
    if "name" in values:
        if not name:
            errors["name"] = [_("Enter a name.")]
        elif CarePlan.objects.filter(name=name).exclude(pk=getattr(current, "pk", None)).exists():
            errors["name"] = [_("A care plan with this name exists already.")]
        values["name"] = name
    if "occasion" in values and values["occasion"] not in OCCASIONS:
        errors["occasion"] = [_("Choose an occasion from the list.")]
    if "action" in values and values["action"] not in CareAction.values:
        errors["action"] = [_("Choose an action from the list.")]
    if "priority" in values and values["priority"] not in Priority.values:
        errors["priority"] = [_("Choose a priority from the list.")]
    if "lead_days" in values and not (0 <= int(values["lead_days"] or 0) <= MAX_LEAD_DAYS):
        errors["lead_days"] = [_("Enter a number of days from 0 to %(max)s.") % {"max": MAX_LEAD_DAYS}]
    if values.get("segment") is not None and not isinstance(values["segment"], Segment):
        errors["segment"] = [_("Choose a segment or list from the list.")]
    if "task_title" in values:
        values["task_title"] = (values["task_title"] or "").strip()
    action = values.get("action", getattr(current, "action", CareAction.GREETING))
    if templates is not None or action == CareAction.GREETING:
        chosen = templates if templates is not None else (list(current.templates.all()) if current else [])
        if action == CareAction.GREETING:
            problem = _templates_problem(chosen)
            if problem:
                errors["templates"] = [problem]
    if errors:
        raise ValidationError(errors)
    return values


def _templates_problem(templates: list[MessageTemplate]) -> str:
    if not templates:
        return _("Choose a greeting template for each language you greet in.")
    if any(not t.is_active for t in templates):
        return _("Choose active templates only.")
    if len({t.channel for t in templates}) > 1:
        return _("The templates of one plan must share a channel.")
    if len({t.language for t in templates}) < len(templates):
        return _("Choose one template per language.")
    return ""


def care_plan_create(*, actor, templates: list[MessageTemplate] = (), **values) -> CarePlan:
    """A care plan: `name`, `occasion`, `action`, `lead_days`, `segment`, `task_title`, `priority`, `is_active`,
    and for greetings the `templates` (one per language)."""
    _require(actor, Perm.CARE_MANAGE)
    unknown = set(values) - set(PLAN_FIELDS)
    if unknown:
        raise TypeError(f"unknown care plan fields: {sorted(unknown)}")
    values = {"action": CareAction.GREETING, "lead_days": 0, **values}
    values.setdefault("name", "")
    values.setdefault("occasion", "")
    values = _clean_plan(values, list(templates), None)
    with transaction.atomic():
        plan = CarePlan.objects.create(created_by=actor, **values)
        plan.templates.set(templates)
        audit_record(actor=actor, action="care.plan.create", target=plan, fields=[*values, "templates"])
    return plan


def care_plan_update(*, plan: CarePlan, actor, templates: list[MessageTemplate] | None = None, **changes) -> CarePlan:
    """Change the fields given (and the templates, when given)."""
    _require(actor, Perm.CARE_MANAGE)
    unknown = set(changes) - set(PLAN_FIELDS)
    if unknown:
        raise TypeError(f"unknown care plan fields: {sorted(unknown)}")
    changes = _clean_plan(dict(changes), list(templates) if templates is not None else None, plan)
    changed = [name for name, value in changes.items() if getattr(plan, name) != value]
    templates_changed = templates is not None and {t.pk for t in templates} != set(
        plan.templates.values_list("pk", flat=True)
    )
    if not changed and not templates_changed:
        return plan
    with transaction.atomic():
        for name in changed:
            setattr(plan, name, changes[name])
        plan.save()
        if templates_changed:
            plan.templates.set(templates)
        fields = changed + (["templates"] if templates_changed else [])
        audit_record(actor=actor, action="care.plan.update", target=plan, fields=fields)
    return plan


# --- the daily run ------------------------------------------------------------------------------------------------


@dataclass
class PlanRun:
    plan: CarePlan
    day: date
    occasion_day: date
    customers: int = 0
    queued: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    tasks: int = 0
    skipped: bool = False  # already run that day
    error: str = ""


def _plan_customers(plan: CarePlan, day: date) -> list[int]:
    customers = customers_on_date(kind=plan.occasion, on=day, offset_days=-plan.lead_days)
    if plan.segment_id:
        customers = customers.filter(
            pk__in=SegmentMember.objects.filter(segment_id=plan.segment_id).values("customer_id")
        )
    return list(customers.order_by("pk").values_list("pk", flat=True))


def _greet(plan: CarePlan, run: PlanRun, ids: list[int], actor) -> None:
    templates = {t.language: t for t in plan.templates.filter(is_active=True)}
    if not templates:
        run.error = _("The plan has no active greeting template.")
        return
    result = messages_queue(
        customer_ids=ids,
        template=templates,
        key_for=lambda pk: care_key(plan.occasion, run.occasion_day, pk),
        key_prefix=f"care:{plan.occasion}:{run.occasion_day.isoformat()}",
        extra_context={"occasion": plan.occasion, "occasion_day": run.occasion_day.isoformat()},
        origin="care",
        actor=actor,
    )
    run.queued, run.suppressed = result.queued, dict(result.suppressed)


def _task_title(plan: CarePlan) -> str:
    if plan.task_title:
        return plan.task_title
    # Stored as text, so written in the business's language whoever reads it later.
    with translation.override(settings.LANGUAGE_CODE):
        return _("Care call: %(occasion)s") % {"occasion": OCCASIONS[plan.occasion]}


def _call(plan: CarePlan, run: PlanRun, ids: list[int]) -> None:
    """One follow-up per customer, due on the first workday from the run's day, owned by the customer's owner when
    they may own it, else the fallback administrator (as churn follow-ups are)."""
    keys = {pk: care_key(plan.occasion, run.occasion_day, pk) for pk in ids}
    done = set(CareTask.objects.filter(key__in=list(keys.values())).values_list("key", flat=True))
    restricted = restricted_ids(ids)
    wanted = [pk for pk in ids if keys[pk] not in done and pk not in restricted]
    if not wanted:
        return
    due_at = datetime.combine(next_workday(run.day), CALL_DUE_TIME, ZoneInfo(settings.TIME_ZONE))
    title = _task_title(plan)
    fallback = churn_default_owner()
    customers = Customer.objects.select_related("owner").in_bulk(wanted)
    for pk in wanted:
        customer = customers[pk]
        owner = follow_up_default_owner(customer=customer, actor=None) or fallback
        try:
            with transaction.atomic():
                # The key first: a concurrent run that got there before makes this one roll back, not duplicate.
                task = CareTask.objects.create(key=keys[pk], customer=customer, plan=plan)
                task.follow_up = follow_up_create(
                    customer=customer, title=title, due_at=due_at, actor=None, owner=owner, priority=plan.priority
                )
                task.save(update_fields=["follow_up"])
        except IntegrityError:
            continue
        except ValidationError as error:
            logger.warning("care call task for customer %s not made: %s", pk, " ".join(error.messages))
            continue
        run.tasks += 1


def care_plan_run(*, plan: CarePlan, day: date | None = None, force: bool = False, actor=None) -> PlanRun:
    """Act on one plan for the customers whose occasion is `lead_days` after `day` (today in the business time
    zone). Once a day: a plan already run that day is skipped unless `force`; even then nothing is sent or
    created twice (the care keys)."""
    _require(actor, Perm.CARE_MANAGE)
    day = day or business_today()
    run = PlanRun(plan=plan, day=day, occasion_day=day + timedelta(days=plan.lead_days))
    if not force and CareRun.objects.filter(plan=plan, day=day, error="").exists():
        run.skipped = True
        return run
    ids = _plan_customers(plan, day)
    run.customers = len(ids)
    if ids:
        if plan.action == CareAction.GREETING:
            _greet(plan, run, ids, actor)
        else:
            _call(plan, run, ids)
    with transaction.atomic():
        record, _created = CareRun.objects.select_for_update().get_or_create(
            plan=plan, day=day, defaults={"occasion_day": run.occasion_day}
        )
        record.customers = run.customers
        record.queued += run.queued
        record.tasks += run.tasks
        for reason, count in run.suppressed.items():
            record.suppressed[reason] = record.suppressed.get(reason, 0) + count
        record.error = run.error
        record.save()
        if run.queued or run.tasks or run.suppressed:
            audit_record(
                actor=actor,
                action="care.run",
                target=plan,
                note=f"day={day} queued={run.queued} tasks={run.tasks} suppressed={sum(run.suppressed.values())}",
            )
    return run


def care_run(*, day: date | None = None, plans=None, force: bool = False, actor=None) -> list[PlanRun]:
    """Run every active plan (or `plans`) for `day`: what the worker does every hour, idempotently."""
    _require(actor, Perm.CARE_MANAGE)
    plans = plans if plans is not None else CarePlan.objects.filter(is_active=True).order_by("pk")
    runs = []
    for plan in plans:
        try:
            runs.append(care_plan_run(plan=plan, day=day, force=force, actor=actor))
        except ValidationError as error:
            logger.warning("care plan %s did not run: %s", plan.pk, " ".join(error.messages))
            runs.append(PlanRun(plan=plan, day=day or business_today(), occasion_day=day or business_today()))
            runs[-1].error = " ".join(error.messages)
    return runs


# --- gifts --------------------------------------------------------------------------------------------------------


def gift_record(
    *,
    customer: Customer,
    description: str,
    given_on: date,
    actor,
    value: Decimal | None = None,
    currency: str = "CNY",
    occasion: str = "other",
    given_by=None,
    notes: str = "",
) -> Gift:
    """Record a gift or benefit given to a customer; `given_by` defaults to the actor."""
    _require(actor, Perm.ACTIVITY_LOG)
    errors: dict[str, list[str]] = {}
    description = (description or "").strip()
    if not description:
        errors["description"] = [_("Say what was given.")]
    elif len(description) > 200:
        errors["description"] = [_("Enter at most %(n)s characters.") % {"n": 200}]
    if value is not None and value < 0:
        errors["value"] = [_("Enter a value of 0 or more.")]
    if occasion not in GIFT_OCCASIONS:
        errors["occasion"] = [_("Choose an occasion from the list.")]
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        errors["currency"] = [_("Enter a three-letter currency code such as CNY.")]
    if given_on > business_today():
        errors["given_on"] = [_("A gift cannot be given in the future.")]
    if customer.merged_into_id or customer.is_archived:
        errors["customer"] = [_("Gifts can only be recorded for a customer that is not archived.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        gift = Gift.objects.create(
            customer=customer,
            description=description,
            value=value,
            currency=currency.upper(),
            occasion=occasion,
            given_on=given_on,
            given_by=given_by or actor,
            notes=(notes or "").strip(),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="care.gift.record",
            target=customer,
            fields=["description", "value", "occasion", "given_on"],
            note=f"gift={gift.pk}",
        )
    return gift


# --- standard greetings -------------------------------------------------------------------------------------------

# (occasion, {language: (subject, body)}): written once per language, rendered per customer by messaging.
STANDARD_GREETINGS = {
    "birthday": {
        "zh-hans": (
            "生日快乐，{{ customer.display_name }}",
            "{{ customer.display_name }}，您好！\n祝您生日快乐，万事如意！",
        ),
        "en": ("Happy birthday, {{ customer.display_name }}", "Dear {{ customer.display_name }},\nHappy birthday!"),
    },
    "lunar_birthday": {
        "zh-hans": ("生日快乐，{{ customer.display_name }}", "{{ customer.display_name }}，您好！\n农历生日快乐！"),
        "en": ("Happy birthday, {{ customer.display_name }}", "Dear {{ customer.display_name }},\nHappy birthday!"),
    },
    "anniversary": {
        "zh-hans": ("感谢一路相伴", "{{ customer.display_name }}，您好！\n感谢您又一年的信任与支持。"),
        "en": ("Thank you for another year", "Dear {{ customer.display_name }},\nThank you for another year with us."),
    },
    "spring_festival": {
        "zh-hans": ("新春快乐", "{{ customer.display_name }}，您好！\n恭贺新春，祝您新年大吉，阖家幸福！"),
        "en": ("Happy Spring Festival", "Dear {{ customer.display_name }},\nHappy Chinese New Year!"),
    },
    "mid_autumn_festival": {
        "zh-hans": ("中秋快乐", "{{ customer.display_name }}，您好！\n月圆人团圆，祝您中秋快乐！"),
        "en": ("Happy Mid-Autumn Festival", "Dear {{ customer.display_name }},\nHappy Mid-Autumn Festival!"),
    },
}


def care_templates_create(*, channel: str = "email", actor) -> list[MessageTemplate]:
    """The standard greeting templates (birthday, lunar birthday, anniversary, Spring Festival, Mid-Autumn), in
    Chinese and English, for `channel`; those that exist already (by name and language) are left as they are."""
    _require(actor, Perm.CARE_MANAGE)
    made = []
    with transaction.atomic():
        for occasion, languages in STANDARD_GREETINGS.items():
            name = f"care-{occasion}-{channel}"
            for language, (subject, body) in languages.items():
                template, created = MessageTemplate.objects.get_or_create(
                    name=name,
                    language=language,
                    defaults={
                        "channel": channel,
                        "purpose": ConsentPurpose.MARKETING,
                        "subject": subject,
                        "body": body,
                    },
                )
                if created:
                    made.append(template)
        if made:
            audit_record(
                actor=actor,
                action="care.templates.create",
                target=None,
                target_type="automation.messagetemplate",
                target_id=",".join(str(t.pk) for t in made)[:64],
            )
    return made
