"""Churn warning (流失预警): how likely each customer is to stop buying, and why, in words an owner can act on.

Signals, per customer who has bought (counted orders only, as RFM and CLV count them), as of the end of a day:

* recency: days since the last purchase against the customer's own typical gap (the median days between purchase
  days; for one-time buyers, the median over all repeat buyers);
* frequency drop: purchase days in the last window (`CIM_CHURN_WINDOW_DAYS`, 90) against the window before;
* not alive: 1 − the BG/NBD probability that the customer is still active (`cim.analytics.clv`);
* complaints: complaint-type tickets opened in the last window; open tickets whose SLA is breached;
* satisfaction: CSAT answers of 1 or 2 in the last two windows; the latest NPS answer of the last year, if 0–6
  (a detractor).

The score is a logistic regression fitted on a backtest: the same signals as of one window ago, labelled by whether
the customer bought again in the window since. Each customer's reasons are the signals that push their score up
most: coefficient × standardised value, the usual reading of a linear model. When the backtest is too small to fit
(fewer than `MIN_FIT` customers, or fewer than `MIN_CLASS` of those who did or did not come back), a fixed-weight
score is used instead (`FIXED_WEIGHTS`: each signal mapped to 0..1 and weighted; weights of missing signals left
out), and the result says so.

`churn_refresh` writes the scores, the reasons and the CLV columns to `CustomerScore`, set-based, and makes a
follow-up for each valuable customer at risk that has none open.
"""

import itertools
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from cim.accounts.models import User
from cim.accounts.roles import Role
from cim.activities.follow_up_selectors import end_of_today, follow_up_owners
from cim.activities.follow_ups import follow_up_create
from cim.activities.models import FollowUp, Priority
from cim.analytics.clv import clv_fit
from cim.analytics.data import purchases
from cim.analytics.models import CustomerScore
from cim.customers.models import Customer
from cim.service import sla
from cim.service.choices import OPEN_STATUSES, Category, SurveyKind
from cim.service.models import Survey, Ticket

logger = logging.getLogger(__name__)

BATCH = 5000
MIN_FIT = 100
MIN_CLASS = 20
MAX_REASONS = 3
# Tickets that say something went wrong (not questions or suggestions).
COMPLAINTS = (Category.COMPLAINT, Category.PRODUCT, Category.DELIVERY, Category.BILLING, Category.AFTER_SALES)
LOW_CSAT = 2
DETRACTOR = 6
FEATURES = ("recency", "frequency_drop", "not_alive", "complaints", "breached", "low_csat", "detractor")
# The fallback: each signal as 0..1 (see `_fixed_parts`) times its weight; the weights add up to 1.
FIXED_WEIGHTS = {
    "recency": 0.45,
    "frequency_drop": 0.2,
    "not_alive": 0.1,
    "complaints": 0.1,
    "breached": 0.05,
    "low_csat": 0.05,
    "detractor": 0.05,
}
TASK_DUE_DAYS = 3


def reason_text(key: str, params: dict) -> str:
    """A reason in plain words, in the active language."""
    p = params
    if key == "recency":
        return _("No order for %(days)s days; usually every %(gap)s days") % p
    if key == "recency_single":
        return _("No order for %(days)s days since the first; customers usually buy again within %(gap)s days") % p
    if key == "frequency_drop":
        return _("%(recent)s orders in the last %(window)s days, %(previous)s in the %(window)s days before") % p
    if key == "not_alive":
        return _("Purchase pattern: %(percent)s%% likely still active") % p
    if key == "complaints":
        return ngettext(
            "%(n)s complaint in %(window)s days", "%(n)s complaints in %(window)s days", p["n"]
        ) % p  # fmt: skip
    if key == "breached":
        return ngettext("%(n)s open ticket past its SLA", "%(n)s open tickets past their SLA", p["n"]) % p
    if key == "low_csat":
        return _("Low satisfaction: rated %(score)s of 5") % p
    if key == "detractor":
        return _("NPS detractor: gave %(score)s of 10") % p
    return key


def reason_texts(reasons: list) -> list[str]:
    return [reason_text(key, params) for key, _weight, params in reasons]


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


@dataclass
class ChurnResult:
    as_of: date
    method: str  # "model": the logistic regression; "fixed": the fixed weights
    scores: pd.DataFrame  # per customer: the signals, risk, reasons, value, p_alive, expected, clv
    coefficients: dict[str, float] = field(default_factory=dict)  # per standardised signal (model only)
    backtest: dict[str, float] = field(default_factory=dict)  # customers, churned share, in-sample AUC (model only)
    clv_problem: str = ""


def _purchase_signals(con, day: date, window: int) -> pd.DataFrame:
    """Recency and frequency of each customer's purchase days up to the end of `day`."""
    frame = (
        con.execute(
            """
        WITH days AS (
            SELECT DISTINCT customer_id, date_trunc('day', ordered_at) AS day FROM purchases
            WHERE ordered_at < ?::TIMESTAMPTZ
        ), gaps AS (
            SELECT customer_id, day,
                   date_diff('day', lag(day) OVER (PARTITION BY customer_id ORDER BY day), day) AS gap
            FROM days
        )
        SELECT customer_id,
               date_diff('day', max(day), ?::TIMESTAMPTZ) AS days_since,
               count(*) AS order_days,
               median(gap) AS own_gap,
               count(*) FILTER (WHERE day > ?::TIMESTAMPTZ) AS recent,
               count(*) FILTER (WHERE day > ?::TIMESTAMPTZ AND day <= ?::TIMESTAMPTZ) AS previous
        FROM gaps GROUP BY customer_id ORDER BY customer_id
        """,
            [
                _midnight(day + timedelta(days=1)),
                _midnight(day),
                _midnight(day - timedelta(days=window)),
                _midnight(day - timedelta(days=2 * window)),
                _midnight(day - timedelta(days=window)),
            ],
        )
        .df()
        .set_index("customer_id")
    )
    spent = con.execute(
        "SELECT customer_id, sum(amount) AS spent FROM purchases WHERE ordered_at < ?::TIMESTAMPTZ GROUP BY 1",
        [_midnight(day + timedelta(days=1))],
    ).df()
    frame["spent"] = spent.set_index("customer_id")["spent"]
    repeat_gaps = frame["own_gap"].dropna()
    # One-time buyers are measured against repeat buyers' usual gap; with no repeat buyer at all, the window.
    usual = float(repeat_gaps.median()) if len(repeat_gaps) else float(window)
    frame["gap"] = frame["own_gap"].fillna(usual).clip(lower=1).round()
    frame["ratio"] = frame["days_since"] / frame["gap"]
    busiest = frame[["recent", "previous"]].max(axis=1).clip(lower=1)
    frame["drop"] = (frame["previous"] - frame["recent"]) / busiest
    return frame


def _service_signals(day: date, window: int, *, current: bool) -> pd.DataFrame:
    """Complaints, breached open tickets, low CSAT and NPS detractors per customer, as of the end of `day`.
    `current`: the tickets' SLA states now (exact); otherwise rebuilt from their timestamps (the backtest)."""
    end = _midnight(day + timedelta(days=1))
    since = end - timedelta(days=window)
    if current:
        breached = Q(status__in=OPEN_STATUSES) & sla.breached(min(end, timezone.now()))
    else:
        open_then = Q(resolved_at__isnull=True) | Q(resolved_at__gte=end)
        open_then &= Q(closed_at__isnull=True) | Q(closed_at__gte=end)
        late_response = Q(first_response_due__lt=end) & (
            Q(first_responded_at__isnull=True) | Q(first_responded_at__gt=F("first_response_due"))
        )
        breached = open_then & (late_response | Q(resolution_due__lt=end))
    tickets = (
        Ticket.objects.filter(created_at__lt=end)
        .values("customer_id")
        .annotate(
            complaints=Count("pk", filter=Q(created_at__gte=since, category__in=COMPLAINTS)),
            breached=Count("pk", filter=breached),
        )
        .filter(Q(complaints__gt=0) | Q(breached__gt=0))
        .order_by()
        .values_list("customer_id", "complaints", "breached")
    )
    frame = (
        pd.DataFrame(list(tickets), columns=["customer_id", "complaints", "breached"])
        .set_index("customer_id")
        .astype(float)
    )
    csat = (
        Survey.objects.filter(
            kind=SurveyKind.CSAT, answered_at__lt=end, answered_at__gte=end - timedelta(days=2 * window)
        )
        .filter(score__lte=LOW_CSAT)
        .values("customer_id")
        .annotate(low_csat=Count("pk"), csat_score=Min("score"))
        .order_by()
        .values_list("customer_id", "low_csat", "csat_score")
    )
    frame = frame.join(
        pd.DataFrame(list(csat), columns=["customer_id", "low_csat", "csat_score"])
        .set_index("customer_id")
        .astype(float),
        how="outer",
    )
    latest_nps: dict[int, int] = {}
    answers = (
        Survey.objects.filter(kind=SurveyKind.NPS, answered_at__lt=end, answered_at__gte=end - timedelta(days=365))
        .order_by("customer_id", "-answered_at", "-id")
        .values_list("customer_id", "score")
    )
    for customer_id, score in answers.iterator(chunk_size=BATCH):
        latest_nps.setdefault(customer_id, score)
    nps = pd.Series(latest_nps, name="nps_score", dtype="float64")
    frame = frame.join(nps[nps <= DETRACTOR], how="outer")
    frame["detractor"] = frame["nps_score"].notna().astype(float)
    return frame


def _signals(day: date, window: int, con, alive: pd.Series | None, *, current: bool) -> pd.DataFrame:
    """Every signal of the customers who had bought by the end of `day`."""
    frame = _purchase_signals(con, day, window)
    service = _service_signals(day, window, current=current)
    frame = frame.join(service, how="left")
    for column in ("complaints", "breached", "low_csat", "detractor"):
        frame[column] = frame[column].fillna(0).astype(float)
    frame["p_alive"] = alive.reindex(frame.index) if alive is not None else np.nan
    # The model reads recency on a log scale: 5 gaps late is not five times as telling as 1 gap late.
    frame["recency"] = np.log1p(frame["ratio"])
    frame["frequency_drop"] = frame["drop"]
    frame["not_alive"] = (1 - frame["p_alive"]).fillna(0)
    return frame


def _present(frame: pd.DataFrame) -> pd.DataFrame:
    """Whether each signal is there to be named as a reason: late, fewer orders, likely gone, any complaint..."""
    return pd.DataFrame(
        {
            "recency": frame["ratio"] > 1,
            "frequency_drop": frame["drop"] > 0,
            "not_alive": frame["p_alive"] < 0.5,
            "complaints": frame["complaints"] > 0,
            "breached": frame["breached"] > 0,
            "low_csat": frame["low_csat"] > 0,
            "detractor": frame["detractor"] > 0,
        },
        index=frame.index,
    )


def _fixed_parts(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The fallback's weighted signals, each 0..1 before its weight: one gap late is nothing yet, four is all."""
    unit = pd.DataFrame(
        {
            "recency": ((frame["ratio"] - 1) / 3).clip(0, 1),
            "frequency_drop": frame["drop"].clip(0, 1),
            "not_alive": frame["not_alive"],
            "complaints": (frame["complaints"] / 2).clip(0, 1),
            "breached": frame["breached"].clip(0, 1),
            "low_csat": frame["low_csat"].clip(0, 1),
            "detractor": frame["detractor"],
        },
        index=frame.index,
    )[features]
    total = sum(FIXED_WEIGHTS[f] for f in features)
    return unit.mul(pd.Series({f: FIXED_WEIGHTS[f] / total for f in features}))


def _reasons(parts: pd.DataFrame, present: pd.DataFrame, frame: pd.DataFrame, window: int) -> list[list]:
    """Per customer, the signals that raise the score most, with the values their texts show."""
    names = list(parts.columns)
    shown = parts.where(present[names] & (parts > 0)).fillna(0).to_numpy()
    # The top few per row in one sort over the whole array; rows are then read by position, never by label.
    order = np.argsort(-shown, axis=1, kind="stable")[:, :MAX_REASONS]
    columns = ("days_since", "gap", "order_days", "recent", "previous", "p_alive", "complaints", "breached")
    values = {name: frame[name].tolist() for name in (*columns, "csat_score", "nps_score") if name in frame}
    result = []
    for row, top in enumerate(order.tolist()):
        result.append(
            [
                [*_reason(names[i], values, row, window), round(float(shown[row, i]), 3)]
                for i in top
                if shown[row, i] > 0
            ]
        )
    return [[[key, weight, params] for key, params, weight in reasons] for reasons in result]


def _reason(name: str, v: dict[str, list], row: int, window: int) -> tuple[str, dict]:
    if name == "recency":
        params = {"days": int(v["days_since"][row]), "gap": int(v["gap"][row])}
        return ("recency" if v["order_days"][row] > 1 else "recency_single"), params
    if name == "frequency_drop":
        return name, {"recent": int(v["recent"][row]), "previous": int(v["previous"][row]), "window": window}
    if name == "not_alive":
        return name, {"percent": round(float(v["p_alive"][row]) * 100)}
    if name == "complaints":
        return name, {"n": int(v["complaints"][row]), "window": window}
    if name == "breached":
        return name, {"n": int(v["breached"][row])}
    if name == "low_csat":
        return name, {"score": int(v["csat_score"][row])}
    return name, {"score": int(v["nps_score"][row])}


def _alive(day: date) -> tuple[pd.DataFrame | None, str]:
    try:
        return clv_fit(calibration_end=day).summary, ""
    except ValidationError as error:
        return None, " ".join(error.messages)


def churn_scores(*, as_of: date | None = None, window: int | None = None) -> ChurnResult:
    """Score every customer who has bought, as of the end of `as_of` (default today)."""
    today = as_of or timezone.localdate()
    window = window or settings.CIM_CHURN_WINDOW_DAYS
    cutoff = today - timedelta(days=window)
    clv, clv_problem = _alive(today)
    past, _past_problem = _alive(cutoff)
    con = purchases(until=_midnight(today + timedelta(days=1)))
    now = _signals(today, window, con, clv["p_alive"] if clv is not None else None, current=True)
    then = _signals(cutoff, window, con, past["p_alive"] if past is not None else None, current=False)
    came_back = set(
        con.execute(
            "SELECT DISTINCT customer_id FROM purchases WHERE ordered_at >= ?::TIMESTAMPTZ",
            [_midnight(cutoff + timedelta(days=1))],
        )
        .df()["customer_id"]
        .tolist()
    )
    con.close()
    # p_alive only when both fits worked: the model must see at scoring the signals it was fitted on.
    features = [f for f in FEATURES if f != "not_alive" or (clv is not None and past is not None)]
    churned = (~then.index.isin(list(came_back))).astype(int)
    present = _present(now)
    coefficients: dict[str, float] = {}
    backtest: dict[str, float] = {}
    if len(then) >= MIN_FIT and min(churned.sum(), len(churned) - churned.sum()) >= MIN_CLASS:
        scaler = StandardScaler().fit(then[features])
        model = LogisticRegression(max_iter=1000).fit(scaler.transform(then[features]), churned)
        standard = pd.DataFrame(scaler.transform(now[features]), index=now.index, columns=features)
        now["risk"] = model.predict_proba(standard.to_numpy())[:, 1]
        parts = standard.mul(model.coef_[0])
        coefficients = dict(zip(features, map(float, model.coef_[0]), strict=True))
        backtest = {
            "customers": len(then),
            "churned_share": float(churned.mean()),
            "auc": float(roc_auc_score(churned, model.predict_proba(scaler.transform(then[features]))[:, 1])),
        }
        method = "model"
    else:
        parts = _fixed_parts(now, features)
        now["risk"] = parts.sum(axis=1).clip(0, 1)
        method = "fixed"
    now["reasons"] = pd.Series(_reasons(parts, present, now, window), index=now.index, dtype=object)
    for column in ("expected", "clv"):
        now[column] = clv[column].reindex(now.index) if clv is not None else np.nan
    if clv is None or not now["clv"].any():
        now["clv"] = np.nan  # no Gamma–Gamma fit: a lifetime value of 0 would be a claim, not an unknown
    now["value"] = now["clv"].fillna(now["spent"])
    return ChurnResult(
        as_of=today,
        method=method,
        scores=now,
        coefficients=coefficients,
        backtest=backtest,
        clv_problem=clv_problem,
    )


@dataclass
class ChurnRun:
    result: ChurnResult
    customers: int
    at_risk: int  # at or above CIM_CHURN_TASK_RISK
    tasks: int = 0


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _score_row(customer_id, risk, reasons, p_alive, expected, clv) -> CustomerScore:
    return CustomerScore(
        customer_id=int(customer_id),
        churn_risk=round(float(risk), 4),
        churn_reasons=reasons,
        p_alive=_number(p_alive),
        expected_purchases=_number(expected),
        clv=None if _number(clv) is None else round(float(clv), 2),
    )


def churn_refresh(*, as_of: date | None = None, create_tasks: bool = True) -> ChurnRun:
    """Score every customer, write their churn risk, reasons and CLV columns; with `create_tasks`, give each
    valuable customer at risk a follow-up (see `churn_tasks_create`)."""
    result = churn_scores(as_of=as_of)
    scores = result.scores
    listed = set(
        Customer.objects.filter(merged_into__isnull=True)
        .exclude(status=Customer.Status.ARCHIVED)
        .values_list("pk", flat=True)
        .iterator(chunk_size=BATCH)
    )
    scores = scores[scores.index.isin(list(listed))]
    result.scores = scores
    values = zip(
        scores.index.tolist(), scores["risk"].tolist(), scores["reasons"].tolist(), scores["p_alive"].tolist(),
        scores["expected"].tolist(), scores["clv"].tolist(), strict=True,
    )  # fmt: skip
    scored = set(map(int, scores.index))
    stale = [
        pk
        for pk in CustomerScore.objects.filter(churn_risk__isnull=False)
        .values_list("customer_id", flat=True)
        .iterator(chunk_size=BATCH)
        if pk not in scored
    ]
    with transaction.atomic():
        # Model instances a batch at a time: a million at once would not fit in memory.
        while batch := list(itertools.islice(values, BATCH)):
            CustomerScore.objects.bulk_create(
                [_score_row(*row) for row in batch],
                update_conflicts=True,
                unique_fields=["customer"],
                update_fields=["churn_risk", "churn_reasons", "p_alive", "expected_purchases", "clv"],
                batch_size=BATCH,
            )
        # Customers who no longer count (refunded, archived, merged) lose scores that would now mislead.
        for start in range(0, len(stale), BATCH):
            CustomerScore.objects.filter(customer_id__in=stale[start : start + BATCH]).update(
                churn_risk=None, churn_reasons=[], p_alive=None, expected_purchases=None, clv=None
            )
    threshold = settings.CIM_CHURN_TASK_RISK
    run = ChurnRun(result=result, customers=len(scores), at_risk=int((scores["risk"] >= threshold).sum()))
    if create_tasks:
        run.tasks = churn_tasks_create(result=result)
    return run


def churn_candidates(scores: pd.DataFrame) -> list[int]:
    """Customers at or above CIM_CHURN_TASK_RISK among the most valuable CIM_CHURN_TASK_VALUE_SHARE of all scored
    customers (by CLV where fitted, else by total spent), most at stake first."""
    if scores.empty:
        return []
    top = max(1, math.ceil(len(scores) * settings.CIM_CHURN_TASK_VALUE_SHARE))
    valuable = scores.sort_values(["value"], ascending=False, kind="stable").head(top)
    valuable = valuable[(valuable["value"] > 0) & (valuable["risk"] >= settings.CIM_CHURN_TASK_RISK)]
    stake = valuable["risk"] * valuable["value"]
    return [int(pk) for pk in stake.sort_values(ascending=False, kind="stable").index]


def churn_default_owner() -> User | None:
    """Who gets a churn follow-up when the customer's owner cannot: CIM_CHURN_TASK_OWNER, else the first
    administrator."""
    users = User.objects.filter(is_active=True)
    if settings.CIM_CHURN_TASK_OWNER:
        found = users.filter(username=settings.CIM_CHURN_TASK_OWNER).first()
        if found is not None:
            return found
        logger.warning("CIM_CHURN_TASK_OWNER %r is no active user", settings.CIM_CHURN_TASK_OWNER)
    return users.filter(role=Role.ADMINISTRATOR).order_by("pk").first()


def churn_tasks_create(*, result: ChurnResult, now: datetime | None = None) -> int:
    """A follow-up for each candidate (`churn_candidates`) without an open churn follow-up, and without one made
    in the last window; owned by the customer's owner, else `churn_default_owner`; its notes give the risk and
    the reasons in the installation's language. Returns how many were made. Safe to run twice or in two workers:
    each customer's score row is locked while its follow-up is made."""
    now = now or timezone.now()
    candidates = churn_candidates(result.scores)
    recent = Q(churn_follow_up__status=FollowUp.Status.OPEN) | Q(
        churn_follow_up__created_at__gte=now - timedelta(days=settings.CIM_CHURN_WINDOW_DAYS)
    )
    fallback = churn_default_owner()
    due_at = end_of_today(now) + timedelta(days=TASK_DUE_DAYS - 1) - timedelta(minutes=1)
    made = 0
    for start in range(0, len(candidates), BATCH):
        batch = candidates[start : start + BATCH]
        waiting = set(
            CustomerScore.objects.filter(customer_id__in=batch).exclude(recent).values_list("customer_id", flat=True)
        )
        customers = Customer.objects.select_related("owner").in_bulk([pk for pk in batch if pk in waiting])
        for pk in batch:
            if pk in customers and _task_create(customers[pk], result, fallback, due_at, now):
                made += 1
    return made


def _task_create(customer: Customer, result: ChurnResult, fallback: User | None, due_at: datetime, now) -> bool:
    row = result.scores.loc[customer.pk]
    owners = follow_up_owners(customer=customer)
    owner = customer.owner if customer.owner_id and owners.filter(pk=customer.owner_id).exists() else fallback
    if owner is None:
        logger.warning("no owner for the churn follow-up of customer %s: no active administrator", customer.pk)
        return False
    # Stored as text, so written in the business's language whoever reads it later.
    with translation.override(settings.LANGUAGE_CODE):
        title = _("At risk of churning: get in touch")
        lines = [_("Churn risk %(percent)s%%. Main reasons:") % {"percent": round(float(row["risk"]) * 100)}]
        lines += [f"- {text}" for text in reason_texts(row["reasons"])]
    with transaction.atomic():
        score = (
            CustomerScore.objects.select_for_update(of=("self",))
            .select_related("churn_follow_up")
            .filter(customer_id=customer.pk)
            .first()
        )
        last = score.churn_follow_up if score else None
        if last is not None and (
            last.status == FollowUp.Status.OPEN
            or last.created_at >= now - timedelta(days=settings.CIM_CHURN_WINDOW_DAYS)
        ):
            return False
        try:
            follow_up = follow_up_create(
                customer=customer,
                title=title,
                due_at=due_at,
                actor=None,
                owner=owner,
                priority=Priority.HIGH,
                notes="\n".join(lines),
            )
        except ValidationError as error:
            logger.warning("churn follow-up for customer %s not made: %s", customer.pk, " ".join(error.messages))
            return False
        CustomerScore.objects.filter(customer_id=customer.pk).update(churn_follow_up=follow_up)
    return True
