"""The acquisition API: CAC, historical CLV and their ratio per channel, and the costs they are computed from."""

from datetime import date, datetime
from decimal import Decimal

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from cim.accounts.roles import Perm, has_perm
from cim.analytics.acquisition import (
    acquisition_cost_delete,
    acquisition_cost_list,
    acquisition_cost_set,
    acquisition_report,
    month_of,
    period_parse,
)
from cim.analytics.models import AcquisitionCost
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class PeriodIn(Schema):
    start: str = Field("", alias="from", description="First month, YYYY-MM (default: 11 months before `to`)")
    end: str = Field("", alias="to", description="Last month, YYYY-MM, included (default: this month)")


class ChannelOut(Schema):
    channel: str = Field(description="A source channel, `unknown` (none recorded) or `all`")
    label: str
    customers: int = Field(description="Acquired in the period: their first counted order fell in it")
    orders: int = Field(description="Their counted orders to date")
    revenue: float = Field(description="Their net revenue to date, after refunds")
    cost: float | None = Field(description="Costs entered for the period; null when none, or in several currencies")
    currencies: list[str]
    cac: float | None = Field(description="Cost ÷ customers acquired; null without costs or customers")
    clv: float | None = Field(description="Historical CLV: revenue to date ÷ customers (× margin when given)")
    orders_per_customer: float | None
    ratio: float | None = Field(description="CLV ÷ CAC")


class MonthOut(Schema):
    month: date
    channel: str
    label: str
    customers: int
    cost: float | None
    cac: float | None


class AcquisitionOut(Schema):
    start: date
    end: date
    margin: float | None
    channels: list[ChannelOut]
    total: ChannelOut
    history: list[MonthOut]


@router.get(
    "/analytics/acquisition",
    response=AcquisitionOut,
    summary="CAC, historical CLV and CLV:CAC per acquisition channel, with the monthly history",
)
def acquisition(request, period: Query[PeriodIn], margin: float | None = None):
    _require(request, Perm.ANALYTICS_VIEW)
    start, end = period_parse(period.start, period.end)
    return acquisition_report(start=start, end=end, margin=margin)


class CostOut(Schema):
    channel: str
    month: str = Field(description="YYYY-MM")
    amount: Decimal
    currency: str
    note: str
    created_by: str | None = Field(None, validation_alias="created_by.username")
    updated_at: datetime

    @staticmethod
    def resolve_month(obj) -> str:
        return f"{obj.month:%Y-%m}"


class CostIn(Schema):
    amount: str | Decimal = Field(description="≥ 0, at most two decimal places")
    currency: str = "CNY"
    note: str = ""


@router.get(
    "/analytics/acquisition-costs",
    response=list[CostOut],
    summary="The acquisition costs entered for the period's months",
)
def list_costs(request, period: Query[PeriodIn]):
    _require(request, Perm.ANALYTICS_VIEW)
    start, end = period_parse(period.start, period.end)
    return list(acquisition_cost_list(start=start, end=end))


def _cost(channel: str, month: str) -> AcquisitionCost:
    try:
        return AcquisitionCost.objects.select_related("created_by").get(channel=channel, month=month_of(month))
    except (ValueError, AcquisitionCost.DoesNotExist):
        raise Http404(_("No cost is entered for this channel and month.")) from None


@router.get("/analytics/acquisition-costs/{channel}/{month}", response=CostOut, summary="One channel's cost")
def get_cost(request, channel: str, month: str):
    _require(request, Perm.ANALYTICS_VIEW)
    return _cost(channel, month)


@router.put(
    "/analytics/acquisition-costs/{channel}/{month}",
    response=CostOut,
    summary="Enter or change what acquiring customers through a channel cost in a month (YYYY-MM)",
)
def put_cost(request, channel: str, month: str, payload: CostIn):
    _require(request, Perm.ANALYTICS_MANAGE)
    return acquisition_cost_set(channel=channel, month=month, actor=request.auth, **payload.dict())


@router.delete(
    "/analytics/acquisition-costs/{channel}/{month}", response={204: None}, summary="Remove a channel's cost"
)
def delete_cost(request, channel: str, month: str):
    _require(request, Perm.ANALYTICS_MANAGE)
    if not acquisition_cost_delete(channel=channel, month=month, actor=request.auth):
        raise Http404(_("No cost is entered for this channel and month."))
    return Status(204, None)
