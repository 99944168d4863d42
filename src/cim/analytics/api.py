"""The analytics API: RFM segments and the lifetime-value models, as the analytics page shows them."""

from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Schema
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.analytics.clv import UNIT_DAYS
from cim.analytics.selectors import clv_summary, lifecycle_summary, rfm_summary
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class SegmentOut(Schema):
    key: str
    label: str
    customers: int


class RFMOut(Schema):
    customers: int
    averages: dict[str, float]
    grid: list[list[int]]
    segments: list[SegmentOut]
    value_segments: list[SegmentOut]


@router.get("/analytics/rfm", response=RFMOut, summary="RFM scores: the R×F grid and both segment schemes")
def rfm(request):
    _require(request, Perm.ANALYTICS_VIEW)
    summary = rfm_summary()
    return {
        **vars(summary),
        "segments": [{"key": k, "label": label, "customers": n} for k, label, n in summary.segments],
        "value_segments": [{"key": k, "label": label, "customers": n} for k, label, n in summary.value_segments],
    }


class HoldoutOut(Schema):
    end: date
    actual: int
    predicted: float


class CLVModelOut(Schema):
    calibration_end: date
    time_unit: str
    customers: int
    bgnbd: dict[str, float] = Field(description="r, alpha, a, b")
    gamma_gamma: dict[str, float] | None = Field(description="p, q, v; null with too few repeat buyers")
    expected_purchases: float = Field(description="All customers, in the next year")
    mean_p_alive: float
    total_clv: float = Field(description="The next 12 months, discounted at 1% a month")
    holdout: HoldoutOut | None


class CLVOut(Schema):
    fitted: bool
    problem: str = Field("", description="Why the models could not be fitted (too few purchases)")
    model: CLVModelOut | None = None


@router.get("/analytics/clv", response=CLVOut, summary="BG/NBD and Gamma–Gamma fitted on the orders")
def clv(request, calibration_end: date | None = None, time_unit: str = "W", holdout_end: date | None = None):
    _require(request, Perm.ANALYTICS_VIEW)
    if time_unit not in UNIT_DAYS:
        raise ValidationError({"time_unit": _("Choose D, W or M.")})
    if holdout_end and calibration_end and holdout_end <= calibration_end:
        raise ValidationError({"holdout_end": _("The holdout ends after the calibration period.")})
    try:
        model = clv_summary(calibration_end=calibration_end, time_unit=time_unit, holdout_end=holdout_end)
    except ValidationError as error:
        if "orders" not in getattr(error, "error_dict", {}):
            raise
        return {"fitted": False, "problem": " ".join(error.messages)}
    return {"fitted": True, "model": model}


class StageOut(Schema):
    stage: str
    label: str
    customers: int = Field(description="Customers at this stage or further along (at risk and churned: at it)")
    conversion: float | None = Field(description="Share of the step before; null for the first and for lapsed stages")
    median_days_in_stage: float | None = Field(description="How long the customers now at this stage have been there")


@router.get("/analytics/lifecycle", response=list[StageOut], summary="The lifecycle funnel")
def lifecycle(request):
    _require(request, Perm.ANALYTICS_VIEW)
    return [
        {"stage": key, "label": label, "customers": count, "conversion": rate, "median_days_in_stage": days}
        for key, label, count, rate, days in lifecycle_summary()
    ]
