"""Reads of customer care that pages, the API and the CLI share: the month calendar, plans, runs and gifts. Customers
come through the customers selectors, so the user's record scope holds everywhere."""

import calendar as gregorian
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from cim.automation.calendar import (
    DateKind,
    FestivalDay,
    StatutoryDay,
    customers_on_date,
    festivals_between,
    is_workday,
    statutory_days,
)
from cim.automation.models import CarePlan, CareRun, Gift
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer
from cim.customers.selectors import customer_count, customer_list

# The customer days a calendar shows, in this order.
CALENDAR_KINDS = (DateKind.BIRTHDAY, DateKind.LUNAR_BIRTHDAY, DateKind.ANNIVERSARY)
# Names shown per kind and day; the count says how many more.
NAMES_PER_DAY = 5
COUNT_CAP = 999


@dataclass
class CustomerDay:
    kind: DateKind
    count: int
    more: bool  # more than `count` (the count is capped)
    customers: list[Customer]

    @property
    def label(self) -> str:
        return str(self.kind.label)


@dataclass
class CalendarDay:
    day: date
    in_month: bool
    workday: bool
    festivals: list[FestivalDay] = field(default_factory=list)
    statutory: list[StatutoryDay] = field(default_factory=list)
    customers: list[CustomerDay] = field(default_factory=list)

    @property
    def weekend(self) -> bool:
        return self.day.weekday() >= 5


@dataclass
class CareCalendar:
    year: int
    month: int
    weeks: list[list[CalendarDay]]

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def previous(self) -> date:
        return date(self.year - 1, 12, 1) if self.month == 1 else date(self.year, self.month - 1, 1)

    @property
    def next(self) -> date:
        return date(self.year + 1, 1, 1) if self.month == 12 else date(self.year, self.month + 1, 1)

    @property
    def days(self) -> list[CalendarDay]:
        return [d for week in self.weeks for d in week if d.in_month]


def care_calendar(*, user, year: int, month: int, owner_id: int | None = None) -> CareCalendar:
    """The month's festivals, statutory holidays and make-up workdays, and — among the customers `user` sees (of
    `owner_id`, if given) — their birthdays, lunar birthdays and anniversaries, a few names and a count per day."""
    if not (1 <= month <= 12 and 1900 <= year <= 2200):
        raise ValueError("month out of range")
    weeks_of_dates = gregorian.Calendar(firstweekday=0).monthdatescalendar(year, month)
    start, end = weeks_of_dates[0][0], weeks_of_dates[-1][-1]
    festivals: dict[date, list[FestivalDay]] = {}
    for found in festivals_between(start, end):
        festivals.setdefault(found.day, []).append(found)
    statutory: dict[date, list[StatutoryDay]] = {}
    for found in statutory_days(start, end):
        statutory.setdefault(found.day, []).append(found)
    # Names only: none of the list page's prefetches.
    visible = care_customers(user=user, owner_id=owner_id)
    weeks = []
    for week in weeks_of_dates:
        row = []
        for day in week:
            entry = CalendarDay(
                day=day,
                in_month=day.month == month,
                workday=is_workday(day),
                festivals=festivals.get(day, []),
                statutory=statutory.get(day, []),
            )
            if entry.in_month:
                for kind in CALENDAR_KINDS:
                    on_day = visible.filter(pk__in=customers_on_date(kind=kind, on=day).values("pk"))
                    count, more = customer_count(on_day, cap=COUNT_CAP)
                    if count:
                        names = list(on_day[:NAMES_PER_DAY])
                        entry.customers.append(CustomerDay(kind=kind, count=count, more=more, customers=names))
            row.append(entry)
        weeks.append(row)
    return CareCalendar(year=year, month=month, weeks=weeks)


def care_customers(*, user, owner_id: int | None = None) -> QuerySet[Customer]:
    """The current customers `user` sees (of `owner_id`, if given), by name: what the calendar lists."""
    customers = customer_list(user=user, filters=CustomerFilter(owner_id=owner_id))
    return customers.prefetch_related(None).order_by("display_name", "pk")


def care_customers_on(*, user, kind: str, day: date, owner_id: int | None = None) -> QuerySet[Customer]:
    """The customers `user` sees whose `kind` day is `day` (the calendar's "more" link, the API's list)."""
    on_day = customers_on_date(kind=kind, on=day).values("pk")
    return care_customers(user=user, owner_id=owner_id).filter(pk__in=on_day)


def care_plan_list() -> QuerySet[CarePlan]:
    return (
        CarePlan.objects.select_related("segment", "created_by")
        .prefetch_related("templates")
        .annotate(run_count=Count("runs"))
        .order_by("name")
    )


def care_plan_get(*, pk: int) -> CarePlan:
    plan = care_plan_list().filter(pk=pk).first()
    if plan is None:
        raise Http404(_("No care plan with this id."))
    return plan


def care_run_list(*, plan: CarePlan | None = None, limit: int = 30) -> list[CareRun]:
    runs = CareRun.objects.select_related("plan").order_by("-day", "-ran_at")
    if plan is not None:
        runs = runs.filter(plan=plan)
    return list(runs[:limit])


def gifts_visible(*, user, occasion: str | None = None, since: date | None = None) -> QuerySet[Gift]:
    """Gifts to the customers `user` sees, newest first."""
    visible = Customer.objects.visible_to(user).values("pk")
    gifts = Gift.objects.filter(customer_id__in=visible).select_related("customer", "given_by")
    condition = Q()
    if occasion:
        condition &= Q(occasion=occasion)
    if since:
        condition &= Q(given_on__gte=since)
    return gifts.filter(condition).order_by("-given_on", "-id")


def customer_gifts(*, customer: Customer) -> QuerySet[Gift]:
    """A customer's gifts (the caller has already checked the customer is visible), newest first."""
    return Gift.objects.filter(customer=customer).select_related("given_by").order_by("-given_on", "-id")
