"""The home dashboard: the business's key figures for a period, one team and one acquisition channel.

Definitions (the period runs from the first day's midnight to the last day's end, in the installation's zone):

* **Customers**: not archived, created by the end of the period. **New**: created in the period, by source channel.
* **Active**: customers with a counted order (paid or partly refunded, `analytics/data.py` COUNTED) in the period.
  **Revenue**: the net amount (after refunds) of those orders.
* **Repeat-purchase rate**: of the active customers, the share with two or more counted orders up to the period's
  end (they bought again in the period, or had bought before).
* **NPS** (% promoters 9–10 − % detractors 0–6) and **CSAT** (% of answers scoring 4–5) of the survey answers given
  in the period, as the service reports count them.
* **Open tickets** and those of them past an SLA deadline: now, whatever the period.
* **At-risk value**: the lifetime value (else the total spent) of customers whose churn risk is 0.7 or more
  (`CIM_CHURN_TASK_RISK`, where the churn warning makes follow-ups); none while churn risk has not been computed.

Team and channel select customers (a team's: assigned to it or owned by a member), and every figure counts only
their orders, answers and tickets. Each figure is one SQL aggregate; the whole is cached for a few minutes under a
key made of the filters, so a page view reads one cache entry.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import Field, model_validator
from pydantic import ValidationError as PydanticError

from cim.activities.models import Order
from cim.analytics.data import COUNTED
from cim.analytics.models import CustomerScore
from cim.customers.choices import SourceChannel
from cim.customers.models import Customer
from cim.customers.schemas import MAX_ID
from cim.segments.models import SegmentMember
from cim.service import sla
from cim.service.choices import OPEN_STATUSES
from cim.service.models import Survey, Ticket
from cim.service.selectors import survey_scores

CACHE_SECONDS = 300
DAILY_UP_TO = 92  # days: longer periods chart by month
MAX_DAYS = 3660
PERIODS = {"30d": 30, "90d": 90}
UNKNOWN = "unknown"  # no source channel recorded


class DashboardFilter(Schema):
    """The filters of every dashboard figure and chart, of the cohorts, and of scheduled reports: one definition
    for the page, the API, the CLI and the saved schedules. A new filter is a field here plus a line in
    `customer_condition`."""

    period: Literal["30d", "90d", "year", "custom"] = Field(
        "30d", description="30d, 90d (ending today), year (this calendar year) or custom (`from`, `to`)"
    )
    start: date | None = Field(None, alias="from", description="First day, YYYY-MM-DD (custom period)")
    end: date | None = Field(None, alias="to", description="Last day, included (custom period)")
    team_id: int | None = Field(None, ge=1, le=MAX_ID, description="Customers assigned to the team or its members")
    channel: SourceChannel | None = Field(None, description="Customers' source channel")
    segment: int | None = Field(None, ge=1, le=MAX_ID, description="Members of this segment or static list (its id)")

    model_config = {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _dates_mean_custom(cls, data):
        """First and last days without a period make a custom one."""
        data = getattr(data, "_obj", data)  # ninja's Schema hands its input over wrapped
        if isinstance(data, dict) and not data.get("period") and any(data.get(k) for k in ("from", "to")):
            return {**data, "period": "custom"}
        return data

    @model_validator(mode="after")
    def _custom_needs_dates(self):
        if self.period == "custom":
            if self.start is None or self.end is None:
                raise ValueError(_("A custom period needs both a first and a last day."))
            if self.end < self.start:
                raise ValueError(_("The period's last day comes before its first."))
            if (self.end - self.start).days > MAX_DAYS:
                raise ValueError(_("A period can be at most ten years long."))
        return self

    def bounds(self, today: date | None = None) -> tuple[date, date]:
        """The first and last day (included) of the period."""
        today = today or timezone.localdate()
        if self.period == "custom":
            return self.start, self.end
        if self.period == "year":
            return today.replace(month=1, day=1), today
        return today - timedelta(days=PERIODS[self.period] - 1), today

    def customer_condition(self, prefix: str = "") -> Q:
        """The customers the filters select, as a condition on a model reaching Customer through `prefix`
        (`""` for Customer itself, `"customer__"` for orders, tickets and surveys)."""
        condition = Q()
        if self.team_id is not None:
            condition &= Q(**{f"{prefix}team_id": self.team_id}) | Q(**{f"{prefix}owner__team_id": self.team_id})
        if self.channel is not None:
            condition &= Q(**{f"{prefix}source_channel": self.channel})
        if self.segment is not None:
            members = SegmentMember.objects.filter(segment_id=self.segment).values("customer_id")
            condition &= Q(**{f"{prefix}pk__in": members})
        return condition

    @property
    def selects_customers(self) -> bool:
        return self.customer_condition() != Q()

    def key(self, today: date | None = None) -> str:
        """A cache key part: the filters with the period resolved, so `30d` moves on with the days."""
        start, end = self.bounds(today)
        values = {**self.model_dump(exclude={"period", "start", "end"}, mode="json"), "start": str(start)}
        values["end"] = str(end)
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:24]


def dashboard_filter(data: dict) -> DashboardFilter:
    """Filters from a query string's or a saved schedule's values; field errors as a ValidationError. Empty values
    are absent ones."""
    values = {name: value for name, value in data.items() if value not in ("", None)}
    try:
        return DashboardFilter.model_validate(values)
    except PydanticError as error:
        errors: dict[str, list[str]] = {}
        for problem in error.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "period"
            errors.setdefault(name, []).append(problem["msg"].removeprefix("Value error, "))
        raise ValidationError(errors) from None


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class Dashboard:
    start: date
    end: date
    customers: int
    new_customers: int
    new_by_channel: list[tuple[str, str, int]]  # (channel, label, customers), most first
    active_customers: int
    orders: int
    revenue: float
    repeat_rate: float | None  # 0–1; None without active customers
    nps: float | None  # −100 … 100
    nps_answers: int
    csat: float | None  # % satisfied
    csat_answers: int
    open_tickets: int
    sla_breached: int  # of the open tickets
    at_risk_customers: int
    at_risk_value: float | None  # None while no churn risk has been computed
    trend_unit: str  # "day" or "month"
    trend: list[tuple[date, float, int, int]]  # (day or month, revenue, orders, active customers)
    computed_at: datetime


def _customers(filters: DashboardFilter) -> QuerySet[Customer]:
    return Customer.objects.exclude(status=Customer.Status.ARCHIVED).filter(filters.customer_condition()).order_by()


def _orders(filters: DashboardFilter) -> QuerySet[Order]:
    return Order.objects.filter(filters.customer_condition("customer__"), status__in=COUNTED).order_by()


def dashboard_compute(filters: DashboardFilter, *, now: datetime | None = None) -> Dashboard:
    """Every figure of the dashboard, fresh: a dozen aggregate queries, none per customer."""
    now = now or timezone.now()
    start, end = filters.bounds(timezone.localdate(now))
    since, until = local_midnight(start), local_midnight(end + timedelta(days=1))
    customers = _customers(filters)
    created = customers.filter(created_at__lt=until)
    new = list(
        created.filter(created_at__gte=since)
        .values("source_channel")
        .annotate(n=Count("pk"))
        .values_list("source_channel", "n")
    )
    labels = dict(SourceChannel.choices)
    new_by_channel = sorted(
        ((key or UNKNOWN, str(labels.get(key, _("Unknown"))), n) for key, n in new), key=lambda row: (-row[2], row[0])
    )

    orders = _orders(filters)
    in_period = orders.filter(ordered_at__gte=since, ordered_at__lt=until)
    totals = in_period.aggregate(orders=Count("pk"), revenue=Sum("net_amount", default=0))
    # One row per customer who bought in the period, with their orders to its end: active and repeat in one query.
    buyers = (
        orders.filter(ordered_at__lt=until)
        .values("customer_id")
        .annotate(n=Count("pk"), last=Max("ordered_at"))
        .filter(last__gte=since)
    )
    active = buyers.aggregate(active=Count("customer_id"), repeat=Count("customer_id", filter=Q(n__gte=2)))

    zone = timezone.get_current_timezone()
    unit = "day" if (end - start).days < DAILY_UP_TO else "month"
    bucket = TruncDate("ordered_at", tzinfo=zone) if unit == "day" else TruncMonth("ordered_at", tzinfo=zone)
    trend = [
        (row["bucket"] if unit == "day" else row["bucket"].date(), float(row["revenue"]), row["orders"], row["active"])
        for row in in_period.annotate(bucket=bucket)
        .values("bucket")
        .annotate(revenue=Sum("net_amount", default=0), orders=Count("pk"), active=Count("customer_id", distinct=True))
        .order_by("bucket")
    ]

    answers = Survey.objects.filter(
        filters.customer_condition("customer__"), answered_at__gte=since, answered_at__lt=until
    )
    scores = survey_scores(answers)
    tickets = Ticket.objects.filter(filters.customer_condition("customer__"), status__in=OPEN_STATUSES).order_by()
    open_tickets = tickets.aggregate(open=Count("pk"), breached=Count("pk", filter=sla.breached(now)))

    floor = settings.CIM_CHURN_TASK_RISK  # where the churn warning starts follow-ups: 0.7 unless configured
    risky = CustomerScore.objects.filter(filters.customer_condition("customer__")).order_by()
    risk = risky.aggregate(
        scored=Count("pk", filter=Q(churn_risk__isnull=False)),
        customers=Count("pk", filter=Q(churn_risk__gte=floor)),
        value=Sum(Coalesce("clv", "total_spent"), filter=Q(churn_risk__gte=floor), default=0),
    )

    active_n = active["active"]
    return Dashboard(
        start=start,
        end=end,
        customers=created.count(),
        new_customers=sum(n for _k, _l, n in new_by_channel),
        new_by_channel=new_by_channel,
        active_customers=active_n,
        orders=totals["orders"],
        revenue=float(totals["revenue"]),
        repeat_rate=active["repeat"] / active_n if active_n else None,
        nps=scores.nps,
        nps_answers=scores.nps_answers,
        csat=scores.csat,
        csat_answers=scores.csat_answers,
        open_tickets=open_tickets["open"],
        sla_breached=open_tickets["breached"],
        at_risk_customers=risk["customers"],
        at_risk_value=float(risk["value"]) if risk["scored"] else None,
        trend_unit=unit,
        trend=trend,
        computed_at=now,
    )


def dashboard(filters: DashboardFilter) -> Dashboard:
    """The dashboard as pages, the API, the CLI and reports show it: from the cache when computed in the last few
    minutes for the same filters."""
    key = f"analytics:dashboard:{filters.key()}"
    found = cache.get(key)
    if found is None:
        found = dashboard_compute(filters)
        cache.set(key, found, CACHE_SECONDS)
    return found
