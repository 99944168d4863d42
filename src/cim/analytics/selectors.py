"""Analyses as pages and the API read them: computed on the orders, kept in the cache for a while, since an
installation's RFM moves with its orders, not with each page view."""

from dataclasses import dataclass
from datetime import date

from django.core.cache import cache

from cim.analytics.clv import clv_fit
from cim.analytics.lifecycle import lifecycle_days_in_stage, lifecycle_funnel
from cim.analytics.rfm import RF_SEGMENTS, SEGMENT_LABELS, VALUE_SEGMENTS, rfm_scores

CACHE_SECONDS = 600


@dataclass
class RFMSummary:
    customers: int
    averages: dict[str, float]
    grid: list[list[int]]
    segments: list[tuple[str, str, int]]  # (key, label, customers), in the map's order
    value_segments: list[tuple[str, str, int]]


def rfm_summary() -> RFMSummary:
    found = cache.get("analytics:rfm")
    if found is None:
        result = rfm_scores()
        found = (
            len(result.rows),
            result.averages,
            result.grid(),
            result.counts("segment"),
            result.counts("value_segment"),
        )
        cache.set("analytics:rfm", found, CACHE_SECONDS)
    customers, averages, grid, segments, values = found
    return RFMSummary(
        customers=customers,
        averages=averages,
        grid=grid,
        segments=[(key, str(SEGMENT_LABELS[key]), segments.get(key, 0)) for _rx, key, _label in RF_SEGMENTS],
        value_segments=[(key, str(label), values.get(key, 0)) for key, label in VALUE_SEGMENTS.values()],
    )


@dataclass
class CLVSummary:
    calibration_end: date
    time_unit: str
    customers: int
    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float] | None
    expected_purchases: float  # in the next year, all customers
    mean_p_alive: float
    total_clv: float  # next 12 months, discounted
    holdout: dict | None


def clv_summary(*, calibration_end: date | None = None, time_unit: str = "W", holdout_end: date | None = None):
    key = f"analytics:clv:{calibration_end}:{time_unit}:{holdout_end}"
    found = cache.get(key)
    if found is None:
        result = clv_fit(calibration_end=calibration_end, time_unit=time_unit, holdout_end=holdout_end)
        found = CLVSummary(
            calibration_end=result.calibration_end,
            time_unit=result.time_unit,
            customers=result.customers,
            bgnbd=result.bgnbd,
            gamma_gamma=result.gamma_gamma,
            expected_purchases=float(result.summary["expected"].sum()),
            mean_p_alive=float(result.summary["p_alive"].mean()),
            total_clv=float(result.summary["clv"].sum()),
            holdout=(
                {"end": result.holdout.end, "actual": result.holdout.actual, "predicted": result.holdout.predicted}
                if result.holdout
                else None
            ),
        )
        cache.set(key, found, CACHE_SECONDS)
    return found


def lifecycle_summary() -> list[tuple[str, str, int, float | None, float | None]]:
    """The funnel (stage, label, customers, conversion) with the median days in each stage."""
    days = cache.get("analytics:days-in-stage")
    if days is None:
        days = lifecycle_days_in_stage()
        cache.set("analytics:days-in-stage", days, CACHE_SECONDS)
    return [(key, label, count, rate, days.get(key)) for key, label, count, rate in lifecycle_funnel()]
