"""The dashboard API: its figures and the cohort retention for a period, team and channel, and the scheduled reports
that e-mail them."""

from datetime import date, datetime

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from cim.accounts.roles import Perm, has_perm
from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter, dashboard
from cim.analytics.models import ReportSchedule
from cim.analytics.schedules import report_schedule_create, report_schedule_delete, report_schedule_update
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class ChannelCountOut(Schema):
    channel: str = Field(description="A source channel, or `unknown`")
    label: str
    customers: int


class TrendOut(Schema):
    period: date = Field(description="The day, or the month's first day (periods over 92 days)")
    revenue: float
    orders: int
    active_customers: int


class DashboardOut(Schema):
    start: date
    end: date
    customers: int = Field(description="Not archived, created by the period's end")
    new_customers: int
    new_by_channel: list[ChannelCountOut]
    active_customers: int = Field(description="With a counted order in the period")
    orders: int
    revenue: float = Field(description="Net of refunds")
    repeat_rate: float | None = Field(description="Share (0–1) of active customers with 2+ orders to the period's end")
    nps: float | None = Field(description="% promoters − % detractors of the period's answers")
    nps_answers: int
    csat: float | None = Field(description="% of the period's CSAT answers scoring 4 or 5")
    csat_answers: int
    open_tickets: int = Field(description="Open now")
    sla_breached: int = Field(description="Open tickets past a deadline")
    at_risk_customers: int
    at_risk_value: float | None = Field(description="CLV (else total spent) at churn risk ≥ 0.7; null before scoring")
    trend_unit: str
    trend: list[TrendOut]
    computed_at: datetime


@router.get("/analytics/dashboard", response=DashboardOut, summary="The dashboard's key figures for the filters")
def get_dashboard(request, filters: Query[DashboardFilter]):
    _require(request, Perm.ANALYTICS_VIEW)
    board = dashboard(filters)
    return {
        **vars(board),
        "new_by_channel": [{"channel": k, "label": label, "customers": n} for k, label, n in board.new_by_channel],
        "trend": [
            {"period": day, "revenue": revenue, "orders": n, "active_customers": active}
            for day, revenue, n, active in board.trend
        ],
    }


class CohortOut(Schema):
    month: date = Field(description="First day of the month of the customers' first order")
    customers: int
    active: list[int] = Field(description="Customers who ordered in month 0, 1, … after it")
    retention: list[float] = Field(description="active ÷ customers")


class CohortsOut(Schema):
    start: date
    end: date
    months: int
    cohorts: list[CohortOut]


@router.get("/analytics/cohorts", response=CohortsOut, summary="Cohort retention by month of first order")
def get_cohorts(request, filters: Query[DashboardFilter]):
    _require(request, Perm.ANALYTICS_VIEW)
    return cohort_retention(filters)


class ScheduleOut(Schema):
    id: int
    name: str
    report: str
    format: str
    frequency: str
    recipients: list[str]
    language: str
    filters: dict
    is_active: bool
    last_sent_at: datetime | None
    last_period: str
    last_error: str
    owner: str = Field(validation_alias="owner.username")
    created_at: datetime


class ScheduleIn(Schema):
    name: str
    report: str = Field(description="dashboard, cohorts, rfm or lifecycle")
    format: str = Field("xlsx", description="xlsx or pdf")
    frequency: str = Field(description="daily, weekly (Mondays) or monthly (the 1st)")
    recipients: list[str]
    language: str = Field("zh-hans", description="zh-hans or en")
    filters: dict = Field(
        default_factory=dict, description="Dashboard filters: period, from, to, team_id, channel, segment"
    )
    is_active: bool = True


class SchedulePatch(Schema):
    name: str | None = None
    report: str | None = None
    format: str | None = None
    frequency: str | None = None
    recipients: list[str] | None = None
    language: str | None = None
    filters: dict | None = None
    is_active: bool | None = None


def _schedule(schedule_id: int) -> ReportSchedule:
    schedule = ReportSchedule.objects.select_related("owner").filter(pk=schedule_id).first()
    if schedule is None:
        raise Http404(_("No scheduled report with this id."))
    return schedule


@router.get("/analytics/report-schedules", response=list[ScheduleOut], summary="The scheduled reports")
def list_schedules(request):
    _require(request, Perm.ANALYTICS_MANAGE)
    return list(ReportSchedule.objects.select_related("owner"))


@router.post("/analytics/report-schedules", response={201: ScheduleOut}, summary="Schedule a report")
def create_schedule(request, payload: ScheduleIn):
    _require(request, Perm.ANALYTICS_MANAGE)
    return Status(201, report_schedule_create(data=payload.dict(), actor=request.auth))


@router.get("/analytics/report-schedules/{schedule_id}", response=ScheduleOut, summary="One scheduled report")
def get_schedule(request, schedule_id: int):
    _require(request, Perm.ANALYTICS_MANAGE)
    return _schedule(schedule_id)


@router.patch("/analytics/report-schedules/{schedule_id}", response=ScheduleOut, summary="Change a scheduled report")
def patch_schedule(request, schedule_id: int, payload: SchedulePatch):
    _require(request, Perm.ANALYTICS_MANAGE)
    data = payload.dict(exclude_unset=True)
    return report_schedule_update(schedule=_schedule(schedule_id), data=data, actor=request.auth)


@router.delete("/analytics/report-schedules/{schedule_id}", response={204: None}, summary="Stop a scheduled report")
def delete_schedule(request, schedule_id: int):
    _require(request, Perm.ANALYTICS_MANAGE)
    report_schedule_delete(schedule=_schedule(schedule_id), actor=request.auth)
    return Status(204, None)
