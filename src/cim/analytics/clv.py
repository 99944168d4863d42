"""Customer lifetime value: BG/NBD for the number of future purchases and the probability a customer is still
active, Gamma–Gamma for the value of a purchase (Fader, Hardie & Lee 2005; the `lifetimes` implementation).

The summary the models fit is built in DuckDB from the counted orders: purchases on the same day count once;
`frequency` is the number of repeat purchase days, `recency` the time from the first to the last purchase and
`T` the time from the first purchase to the last day of the calibration period, in the chosen unit (days, weeks
of 7 days, months of 30 days). Days are the installation's (`CIM_TIME_ZONE`); the calibration and holdout
periods end with the days given, included.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import pandas as pd
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import ConvergenceError

from cim.analytics.data import purchases

UNIT_DAYS = {"D": 1, "W": 7, "M": 30}
PENALIZER = 0.0
MIN_CUSTOMERS = 20


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


@dataclass
class Holdout:
    end: date
    actual: int  # repeat purchase days in the holdout period
    predicted: float


@dataclass
class CLVResult:
    calibration_end: date
    time_unit: str
    customers: int
    bgnbd: dict[str, float]  # r, alpha, a, b
    gamma_gamma: dict[str, float] | None  # p, q, v; None when too few repeat buyers
    summary: pd.DataFrame  # per customer: frequency, recency, T, monetary_value, p_alive, expected, clv
    holdout: Holdout | None = None


def _summary(con, end: datetime, unit_days: int) -> pd.DataFrame:
    return (
        con.execute(
            """
        WITH days AS (
            SELECT customer_id, date_trunc('day', ordered_at) AS day, sum(amount) AS amount
            FROM purchases WHERE ordered_at < ?::TIMESTAMPTZ GROUP BY customer_id, day
        ), firsts AS (
            SELECT customer_id, min(day) AS first_day FROM days GROUP BY customer_id
        )
        SELECT d.customer_id,
               count(*) - 1 AS frequency,
               date_diff('day', f.first_day, max(d.day)) / ? AS recency,
               date_diff('day', f.first_day, ?::TIMESTAMPTZ) / ? AS "T",
               coalesce(avg(d.amount) FILTER (WHERE d.day > f.first_day), 0) AS monetary_value
        FROM days d JOIN firsts f USING (customer_id)
        GROUP BY d.customer_id, f.first_day
        ORDER BY d.customer_id
        """,
            [_midnight(end + timedelta(days=1)), float(unit_days), _midnight(end), float(unit_days)],
        )
        .df()
        .set_index("customer_id")
    )


def clv_fit(
    *,
    calibration_end: date | None = None,
    time_unit: str = "W",
    holdout_end: date | None = None,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
) -> CLVResult:
    """Fit BG/NBD and Gamma–Gamma on the purchases up to `calibration_end` (default today). With `holdout_end`,
    also compare the predicted repeat purchases of the days after, up to `holdout_end`, with what the customers
    really did."""
    unit_days = UNIT_DAYS[time_unit]
    end = calibration_end or timezone.localdate()
    con = purchases(until=_midnight((holdout_end or end) + timedelta(days=1)))
    summary = _summary(con, end, unit_days)
    if len(summary) < MIN_CUSTOMERS or not summary["frequency"].any():
        con.close()
        raise ValidationError(
            {"orders": _("The models need at least %(n)s customers with purchases, some of them bought again.")
             % {"n": MIN_CUSTOMERS}}
        )  # fmt: skip
    bgf = BetaGeoFitter(penalizer_coef=PENALIZER)
    try:
        bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    except ConvergenceError:
        con.close()
        raise ValidationError({"orders": _("The model did not converge on these purchases.")}) from None
    summary["p_alive"] = bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
    one_year = 365 / unit_days
    summary["expected"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        one_year, summary["frequency"], summary["recency"], summary["T"]
    )
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    gamma_gamma = None
    summary["clv"] = 0.0
    if len(repeat) >= 10:
        ggf = GammaGammaFitter(penalizer_coef=PENALIZER)
        ggf.fit(repeat["frequency"], repeat["monetary_value"])
        gamma_gamma = {name: float(value) for name, value in ggf.params_.items()}
        summary["clv"] = ggf.customer_lifetime_value(
            bgf,
            summary["frequency"],
            summary["recency"],
            summary["T"],
            summary["monetary_value"],
            time=horizon_months,
            freq=time_unit,
            discount_rate=discount_rate,
        )
    holdout = None
    if holdout_end is not None:
        actual = con.execute(
            """
            SELECT count(*) FROM (
                SELECT DISTINCT customer_id, date_trunc('day', ordered_at) FROM purchases
                WHERE ordered_at >= ?::TIMESTAMPTZ AND ordered_at < ?::TIMESTAMPTZ
            ) WHERE customer_id IN (SELECT customer_id FROM purchases WHERE ordered_at < ?::TIMESTAMPTZ)
            """,
            [
                _midnight(end + timedelta(days=1)),
                _midnight(holdout_end + timedelta(days=1)),
                _midnight(end + timedelta(days=1)),
            ],
        ).fetchone()[0]
        length = (holdout_end - end).days / unit_days
        predicted = bgf.conditional_expected_number_of_purchases_up_to_time(
            length, summary["frequency"], summary["recency"], summary["T"]
        ).sum()
        holdout = Holdout(end=holdout_end, actual=int(actual), predicted=float(predicted))
    con.close()
    return CLVResult(
        calibration_end=end,
        time_unit=time_unit,
        customers=len(summary),
        bgnbd={name: float(value) for name, value in bgf.params_.items()},
        gamma_gamma=gamma_gamma,
        summary=summary,
        holdout=holdout,
    )
