"""RFM (R/F/M 价值分析): recency, frequency and monetary value per customer, scored 1–5, named.

Scores are quintiles by default (R: the most recent fifth scores 5) or come from configured cut points. Two
naming schemes are given for every customer, as Chinese and Western teams use them:

* the eight segments of the Chinese practice (重要价值客户 …), from whether R, F and M are better than the average;
* the R×F segment map (Champions, Loyal, At Risk, Hibernating …), from the R and F scores.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.analytics.data import customer_totals

# (R better than average, F better, M better) → segment.
VALUE_SEGMENTS = {
    (True, True, True): ("important_value", _("Important value")),
    (True, False, True): ("important_development", _("Important development")),
    (False, True, True): ("important_retention", _("Important retention")),
    (False, False, True): ("important_winback", _("Important win-back")),
    (True, True, False): ("general_value", _("General value")),
    (True, False, False): ("general_development", _("General development")),
    (False, True, False): ("general_retention", _("General retention")),
    (False, False, False): ("general_winback", _("General win-back")),
}
# The R×F map, first match wins: a regular expression over "<R score><F score>".
RF_SEGMENTS = [
    (r"[1-2][1-2]", "hibernating", _("Hibernating")),
    (r"[1-2][3-4]", "at_risk", _("At risk")),
    (r"[1-2]5", "cannot_lose", _("Can't lose them")),
    (r"3[1-2]", "about_to_sleep", _("About to sleep")),
    (r"33", "need_attention", _("Need attention")),
    (r"[3-4][4-5]", "loyal", _("Loyal")),
    (r"41", "promising", _("Promising")),
    (r"51", "new", _("New customers")),
    (r"[4-5][2-3]", "potential_loyalist", _("Potential loyalists")),
    (r"5[4-5]", "champions", _("Champions")),
]
SEGMENT_LABELS = {key: label for _rx, key, label in RF_SEGMENTS} | dict(VALUE_SEGMENTS.values())


def rf_segment(r: int, f: int) -> str:
    code = f"{r}{f}"
    return next(key for pattern, key, _label in RF_SEGMENTS if re.fullmatch(pattern, code))


@dataclass(frozen=True)
class CutPoints:
    """Configured score boundaries, ascending, four each: a value at or above the i-th boundary scores i + 2.
    Recency is in days, so its boundaries are read the other way round (fewer days, higher score)."""

    recency: tuple[float, float, float, float]
    frequency: tuple[float, float, float, float]
    monetary: tuple[float, float, float, float]


@dataclass
class RFMRow:
    customer_id: int
    recency_days: int
    frequency: int
    monetary: float
    r: int
    f: int
    m: int
    segment: str  # the R×F map
    value_segment: str  # the Chinese eight


@dataclass
class RFMResult:
    as_of: datetime
    rows: list[RFMRow]
    averages: dict[str, float] = field(default_factory=dict)

    def counts(self, attribute: str = "segment") -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[getattr(row, attribute)] = counts.get(getattr(row, attribute), 0) + 1
        return counts

    def grid(self) -> list[list[int]]:
        """Customers per (R, F) score: grid[r - 1][f - 1]."""
        cells = [[0] * 5 for _ in range(5)]
        for row in self.rows:
            cells[row.r - 1][row.f - 1] += 1
        return cells


def _score(column: str, cuts: tuple | None, *, descending: bool = False) -> str:
    if cuts is None:
        # Quintiles by rank: equal values on a boundary may land in neighbouring scores, as with NTILE anywhere.
        order = "DESC" if descending else "ASC"
        return f"NTILE(5) OVER (ORDER BY {column} {order}, customer_id)"
    compare = "<=" if descending else ">="
    steps = " + ".join(f"CASE WHEN {column} {compare} {float(cut)} THEN 1 ELSE 0 END" for cut in cuts)
    return f"1 + {steps}"


def _rf_case() -> str:
    whens = " ".join(
        f"WHEN regexp_full_match(r::VARCHAR || f::VARCHAR, '{rx}') THEN '{key}'" for rx, key, _l in RF_SEGMENTS
    )
    return f"CASE {whens} END"


def _value_case() -> str:
    whens = " ".join(
        f"WHEN r_good = {r} AND f_good = {f} AND m_good = {m} THEN '{key}'"
        for (r, f, m), (key, _label) in VALUE_SEGMENTS.items()
    )
    return f"CASE {whens} END"


def rfm_table(con, *, as_of: datetime, cuts: CutPoints | None = None) -> None:
    """Add a `scored(customer_id, recency_days, frequency, monetary, r, f, m, segment, value_segment)` table to a
    connection holding `totals` (see cim.analytics.data.customer_totals)."""
    recency_cuts = tuple(reversed(cuts.recency)) if cuts else None
    con.execute(
        f"""
        CREATE TABLE scored AS
        WITH rfm AS (
            SELECT customer_id, date_diff('day', last_at, ?::TIMESTAMPTZ) AS recency_days, orders AS frequency,
                   spent AS monetary
            FROM totals
        ), graded AS (
            SELECT *,
                   {_score("recency_days", recency_cuts, descending=True)} AS r,
                   {_score("frequency", cuts.frequency if cuts else None)} AS f,
                   {_score("monetary", cuts.monetary if cuts else None)} AS m,
                   recency_days <= avg(recency_days) OVER () AS r_good,
                   frequency >= avg(frequency) OVER () AS f_good,
                   monetary >= avg(monetary) OVER () AS m_good
            FROM rfm
        )
        SELECT customer_id, recency_days, frequency, monetary, r, f, m,
               {_rf_case()} AS segment, {_value_case()} AS value_segment
        FROM graded
        """,
        [as_of],
    )


def rfm_scores(*, as_of: datetime | None = None, cuts: CutPoints | None = None) -> RFMResult:
    """Every customer with a counted purchase before `as_of` (default now), scored and named."""
    as_of = as_of or timezone.now()
    con = customer_totals(until=as_of)
    rfm_table(con, as_of=as_of, cuts=cuts)
    rows = con.execute("SELECT * FROM scored ORDER BY customer_id").fetchall()
    averages = dict(
        zip(
            ("recency_days", "frequency", "monetary"),
            con.execute("SELECT avg(recency_days), avg(frequency), avg(monetary) FROM scored").fetchone() or (),
            strict=False,
        )
    )
    con.close()
    result = [
        RFMRow(
            customer_id=customer_id,
            recency_days=int(recency),
            frequency=int(frequency),
            monetary=round(float(monetary), 2),
            r=int(r),
            f=int(f),
            m=int(m),
            segment=segment,
            value_segment=value_segment,
        )
        for customer_id, recency, frequency, monetary, r, f, m, segment, value_segment in rows
    ]
    return RFMResult(as_of=as_of, rows=result, averages={k: float(v or 0) for k, v in averages.items()})
