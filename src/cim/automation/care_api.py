"""The customer care API under /api/v1/care/: the month calendar, the customers of a day, care plans and runs, gifts.
Validates and calls services and selectors only."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.activities.models import Priority
from cim.automation.calendar import DateKind, business_today
from cim.automation.care import MAX_LEAD_DAYS, care_plan_create, care_plan_update, care_run, gift_record
from cim.automation.care_selectors import (
    care_calendar,
    care_customers_on,
    care_plan_get,
    care_plan_list,
    customer_gifts,
    gifts_visible,
)
from cim.automation.models import MessageTemplate
from cim.automation.models.care import GIFT_OCCASION_CHOICES, OCCASION_CHOICES, CareAction
from cim.core.pagination import keyset_page
from cim.customers.schemas import MAX_ID, Id
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied
from cim.segments.models import Segment

router = Router(tags=["care"])

Occasion = Literal[tuple(value for value, _label in OCCASION_CHOICES)]
GiftOccasion = Literal[tuple(value for value, _label in GIFT_OCCASION_CHOICES)]
CalendarKind = Literal["birthday", "lunar_birthday", "anniversary"]


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class CustomerRef(Schema):
    number: str
    display_name: str


class CustomerDayOut(Schema):
    kind: str
    count: int = Field(description="How many customers (capped at 999; see `more`)")
    more: bool
    customers: list[CustomerRef] = Field(description="The first few, by name")


class FestivalOut(Schema):
    festival: str
    name: str
    lunar: bool


class StatutoryOut(Schema):
    kind: Literal["holiday", "makeup_workday"]
    name: str


class CalendarDayOut(Schema):
    day: date
    workday: bool = Field(description="A working day in China (statutory holidays and make-up workdays counted)")
    festivals: list[FestivalOut]
    statutory: list[StatutoryOut]
    customers: list[CustomerDayOut]


class CalendarOut(Schema):
    month: str
    days: list[CalendarDayOut]


class CustomerPage(Schema):
    items: list[CustomerRef]
    next_cursor: str | None


class TemplateRef(Schema):
    id: int
    name: str
    language: str
    channel: str


class CarePlanOut(Schema):
    id: int
    name: str
    occasion: str
    action: CareAction
    lead_days: int
    templates: list[TemplateRef]
    segment_id: int | None
    task_title: str
    priority: Priority
    is_active: bool
    created_at: datetime

    @staticmethod
    def resolve_templates(obj) -> list:
        return list(obj.templates.all())


class CarePlanIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    occasion: Occasion
    action: CareAction = CareAction.GREETING
    lead_days: int = Field(0, ge=0, le=MAX_LEAD_DAYS, description="Act this many days before the occasion")
    template_ids: list[Id] = Field(default_factory=list, max_length=10, description="Greetings: one per language")
    segment_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this segment's or list's members")
    task_title: str = Field("", max_length=200)
    priority: Priority = Priority.NORMAL
    is_active: bool = True


class CarePlanPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    occasion: Occasion | None = None
    action: CareAction | None = None
    lead_days: int | None = Field(None, ge=0, le=MAX_LEAD_DAYS)
    template_ids: list[Id] | None = Field(None, max_length=10)
    segment_id: int | None = Field(None, ge=1, le=MAX_ID)
    task_title: str | None = Field(None, max_length=200)
    priority: Priority | None = None
    is_active: bool | None = None


class RunIn(Schema):
    day: date | None = Field(None, description="The day to run for; today (business time zone) if left out")
    plan_ids: list[Id] | None = Field(None, max_length=100, description="Only these plans; all active ones if left out")


class PlanRunOut(Schema):
    plan_id: int
    name: str
    day: date
    occasion_day: date
    customers: int
    queued: int = Field(description="Greetings queued")
    suppressed: dict[str, int] = Field(description="Greetings not sent, by reason (consent, no address...)")
    tasks: int = Field(description="Call tasks created")
    skipped: bool = Field(description="Already run that day (runs are once a day)")
    error: str


class GiftOut(Schema):
    id: int
    customer: CustomerRef
    description: str
    value: Decimal | None
    currency: str
    occasion: str
    given_on: date
    given_by: str | None

    @staticmethod
    def resolve_given_by(obj) -> str | None:
        return obj.given_by.username if obj.given_by_id else None


class GiftPage(Schema):
    items: list[GiftOut]
    next_cursor: str | None


class GiftIn(Schema):
    description: str = Field(min_length=1, max_length=200, description="What was given: a gift or a benefit")
    value: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    currency: str = Field("CNY", min_length=3, max_length=3)
    occasion: GiftOccasion = "other"
    given_on: date | None = Field(None, description="Today if left out")
    notes: str = Field("", max_length=2000)


def _templates(ids: list[int]) -> list[MessageTemplate]:
    found = list(MessageTemplate.objects.filter(pk__in=ids))
    if len(found) != len(set(ids)):
        raise ValidationError({"template_ids": [_("There is no message template with one of these ids.")]})
    return found


def _segment(segment_id: int | None) -> Segment | None:
    if segment_id is None:
        return None
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise ValidationError({"segment_id": [_("There is no segment with this id.")]})
    return segment


# --- calendar


@router.get("/care/calendar", response=CalendarOut, summary="A month of the care calendar")
def calendar(
    request,
    month: str = Query(None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; this month if left out"),
    owner_id: int | None = Query(None, ge=1, le=MAX_ID, description="Only this owner's customers"),
):
    _require(request, Perm.CUSTOMER_VIEW)
    first = business_today().replace(day=1)
    if month:
        year, number = (int(part) for part in month.split("-"))
        if not (1 <= number <= 12 and 1900 <= year <= 2200):
            raise ValidationError({"month": [_("Enter a month as YYYY-MM.")]})
        first = date(year, number, 1)
    found = care_calendar(user=request.auth, year=first.year, month=first.month, owner_id=owner_id)
    days = [
        {
            "day": d.day,
            "workday": d.workday,
            "festivals": [{"festival": f.festival.value, "name": f.label, "lunar": f.lunar} for f in d.festivals],
            "statutory": [{"kind": s.kind.value, "name": s.name} for s in d.statutory],
            "customers": [
                {"kind": c.kind.value, "count": c.count, "more": c.more, "customers": c.customers} for c in d.customers
            ],
        }
        for d in found.days
    ]
    return {"month": first.strftime("%Y-%m"), "days": days}


@router.get("/care/customers", response=CustomerPage, summary="The customers whose birthday or anniversary is a day")
def customers_on(
    request,
    day: date | None = None,
    kind: CalendarKind = "birthday",
    owner_id: int | None = Query(None, ge=1, le=MAX_ID),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    """`day` is today (business time zone) if left out."""
    _require(request, Perm.CUSTOMER_VIEW)
    day = day or business_today()
    customers = care_customers_on(user=request.auth, kind=DateKind(kind), day=day, owner_id=owner_id)
    items, next_cursor = keyset_page(customers, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


# --- plans


@router.get("/care/plans", response=list[CarePlanOut], summary="Care plans")
def list_plans(request):
    _require(request, Perm.CARE_MANAGE)
    return list(care_plan_list())


@router.post("/care/plans", response={201: CarePlanOut}, summary="Create a care plan")
def create_plan(request, payload: CarePlanIn):
    _require(request, Perm.CARE_MANAGE)
    values = payload.model_dump(exclude={"template_ids", "segment_id"})
    plan = care_plan_create(
        actor=request.auth,
        templates=_templates(payload.template_ids),
        segment=_segment(payload.segment_id),
        **values,
    )
    return Status(201, care_plan_get(pk=plan.pk))


@router.patch("/care/plans/{care_plan_id}", response=CarePlanOut, summary="Change a care plan")
def update_plan(request, payload: CarePlanPatch, care_plan_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.CARE_MANAGE)
    plan = care_plan_get(pk=care_plan_id)
    changes = payload.model_dump(exclude_unset=True)
    for name in ("name", "occasion", "action", "lead_days", "task_title", "priority", "is_active"):
        if name in changes and changes[name] is None:
            raise ValidationError({name: [_("This field cannot be null.")]})
    templates = None
    if "template_ids" in changes:
        templates = _templates(changes.pop("template_ids") or [])
    if "segment_id" in changes:
        changes["segment"] = _segment(changes.pop("segment_id"))
    care_plan_update(plan=plan, actor=request.auth, templates=templates, **changes)
    return care_plan_get(pk=plan.pk)


@router.post("/care/run", response=list[PlanRunOut], summary="Run care plans now (nothing happens twice)")
def run(request, payload: RunIn):
    _require(request, Perm.CARE_MANAGE)
    plans = None
    if payload.plan_ids is not None:
        plans = list(care_plan_list().filter(pk__in=payload.plan_ids))
        if len(plans) != len(set(payload.plan_ids)):
            raise ValidationError({"plan_ids": [_("There is no care plan with one of these ids.")]})
    runs = care_run(day=payload.day, plans=plans, force=True, actor=request.auth)
    return [
        {
            "plan_id": r.plan.pk,
            "name": r.plan.name,
            "day": r.day,
            "occasion_day": r.occasion_day,
            "customers": r.customers,
            "queued": r.queued,
            "suppressed": r.suppressed,
            "tasks": r.tasks,
            "skipped": r.skipped,
            "error": r.error,
        }
        for r in runs
    ]


# --- gifts


@router.get("/care/gifts", response=GiftPage, summary="Gifts to the customers you see")
def list_gifts(
    request,
    occasion: GiftOccasion | None = None,
    since: date | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    _require(request, Perm.CUSTOMER_VIEW)
    gifts = gifts_visible(user=request.auth, occasion=occasion, since=since)
    items, next_cursor = keyset_page(gifts, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/customers/{number}/gifts", response=GiftPage, summary="A customer's gifts")
def customer_gift_list(request, number: str, cursor: str | None = None, limit: int = Query(50, ge=1, le=500)):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    items, next_cursor = keyset_page(
        customer_gifts(customer=customer).select_related("customer"), cursor=cursor, limit=limit
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/customers/{number}/gifts", response={201: GiftOut}, summary="Record a gift to a customer")
def create_gift(request, number: str, payload: GiftIn):
    _require(request, Perm.ACTIVITY_LOG)
    customer = customer_get(user=request.auth, number=number)
    values = payload.model_dump()
    values["given_on"] = values["given_on"] or business_today()
    gift = gift_record(customer=customer, actor=request.auth, **values)
    return Status(201, gift)
