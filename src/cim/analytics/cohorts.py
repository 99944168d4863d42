"""Cohort retention: customers grouped by the month of their first counted order, and the share of each cohort who
ordered in each later month.

The cohorts shown are those whose first month falls in the period, widened to the twelve months ending with it
(a 30-day period has one or two cohorts, too few to compare). Orders after the period's end are not seen, so a
cohort's row stops at the period's last month. Team and channel select the customers as on the dashboard. DuckDB
does the grouping over `analytics/data.py` purchases; the result is cached for a few minutes.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
from django.core.cache import cache
from django.utils import timezone

from cim.analytics.dashboard import CACHE_SECONDS, DashboardFilter, local_midnight
from cim.analytics.data import purchases, query_table
from cim.customers.models import Customer

MIN_MONTHS = 12
IDS = pa.schema([("customer_id", pa.int64())])


def _months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Cohort:
    month: date  # first day of the month of the first order
    customers: int
    active: list[int]  # customers with an order in month 0, 1, … after the first, up to the period's end
    retention: list[float]  # active ÷ customers, month 0 being 1.0


@dataclass
class Cohorts:
    start: date  # first cohort month
    end: date  # the period's last day
    months: int  # the longest row's length
    cohorts: list[Cohort]


def cohort_retention_compute(filters: DashboardFilter) -> Cohorts:
    start, end = filters.bounds()
    last = end.replace(day=1)
    first = min(start.replace(day=1), _add_months(last, 1 - MIN_MONTHS))
    con = purchases(until=local_midnight(end + timedelta(days=1)))
    only = ""
    if filters.selects_customers:
        sql, params = Customer.objects.filter(filters.customer_condition()).values_list("pk").query.sql_with_params()
        con.register("selected", query_table(sql, list(params), IDS))
        only = "WHERE customer_id IN (SELECT customer_id FROM selected)"
    rows = con.execute(
        f"""
        WITH bought AS (
            SELECT DISTINCT customer_id, date_trunc('month', ordered_at)::DATE AS month FROM purchases {only}
        ),
        firsts AS (SELECT customer_id, min(month) AS cohort FROM bought GROUP BY customer_id)
        SELECT f.cohort, datediff('month', f.cohort, b.month) AS offset, count(*) AS customers
        FROM bought b JOIN firsts f USING (customer_id)
        WHERE f.cohort >= ?
        GROUP BY ALL ORDER BY 1, 2
        """,
        [first],
    ).fetchall()
    con.close()
    counts: dict[date, dict[int, int]] = {}
    for month, offset, customers in rows:
        counts.setdefault(month, {})[offset] = customers
    cohorts = []
    for month, active in sorted(counts.items()):
        size = active[0]
        row = [active.get(offset, 0) for offset in range(_months_between(month, last) + 1)]
        cohorts.append(Cohort(month=month, customers=size, active=row, retention=[n / size for n in row]))
    return Cohorts(start=first, end=end, months=max((len(c.active) for c in cohorts), default=0), cohorts=cohorts)


def cohort_retention(filters: DashboardFilter) -> Cohorts:
    """Cohort retention for the filters, from the cache when computed in the last few minutes."""
    key = f"analytics:cohorts:{filters.key(timezone.localdate())}"
    found = cache.get(key)
    if found is None:
        found = cohort_retention_compute(filters)
        cache.set(key, found, CACHE_SECONDS)
    return found
