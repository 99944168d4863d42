"""Each customer's RFM scores kept in `CustomerScore`, where segment rules, lists and the customer page read them.
DuckDB scores the stored order totals (cim.analytics.totals) and compares the scores with the stored ones, and
only the rows that differ are written back, so an hourly refresh of a quiet day writes little."""

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
from django.db import connection
from django.utils import timezone

from cim.analytics.models import CustomerScore
from cim.analytics.rfm import rfm_table
from cim.analytics.totals import CLEARED, order_totals_update, stored_totals
from cim.core.bulk import update_rows

SCORES = tuple(name for name, _empty in CLEARED)


@dataclass
class ScoresRun:
    customers: int  # with a counted order
    changed: int  # rows whose scores were written


def scores_refresh(*, as_of: datetime | None = None, totals: duckdb.DuckDBPyConnection | None = None) -> ScoresRun:
    """Bring every customer's order totals and RFM scores up to date; returns how many scores changed. `totals` is
    a connection from `stored_totals` to reuse, after `order_totals_update` (the caller closes it)."""
    as_of = as_of or timezone.now()
    con = totals
    if con is None:
        order_totals_update(as_of=as_of)
        con = stored_totals()
    rfm_table(con, as_of=as_of)
    changed = con.execute(
        f"""
        SELECT customer_id, r, f, m, segment, value_segment FROM scored
        EXCEPT SELECT customer_id, {", ".join(SCORES)} FROM totals
        """
    ).fetchall()
    [(customers,)] = con.execute("SELECT count(*) FROM totals").fetchall()
    if totals is None:
        con.close()
    _write(changed, timezone.now())
    return ScoresRun(customers=customers, changed=len(changed))


def _write(rows: list[tuple], now: datetime) -> None:
    """Only the score columns: the totals are kept by cim.analytics.totals, other analyses own the rest."""
    stamp = connection.ops.adapt_datetimefield_value(now)
    update_rows(CustomerScore, "customer", [*SCORES, "refreshed_at"], ((*row, stamp) for row in rows))


def stage_since_set(*, customer_ids: list[int], at: datetime) -> None:
    """Record when these customers entered their current lifecycle stage (for the time in stage)."""
    table = connection.ops.quote_name(CustomerScore._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(at)
    # The ids as one parameter, in one statement: one upsert a customer took 10 s for 90,000 on PostgreSQL.
    if connection.vendor == "postgresql":
        chosen, ids = "SELECT unnest(%s::bigint[]) AS id", list(customer_ids)
    else:
        chosen, ids = "SELECT value AS id FROM json_each(%s)", json.dumps(list(customer_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (customer_id, orders, total_spent, rfm_segment, value_segment, churn_reasons, "
            f"stage_since, refreshed_at) SELECT id, 0, 0, '', '', '[]', %s, %s FROM ({chosen}) AS chosen "
            # `WHERE true` lets SQLite's parser tell the upsert's ON CONFLICT from a join's ON.
            "WHERE true ON CONFLICT (customer_id) DO UPDATE SET stage_since = excluded.stage_since",
            [stamp, stamp, ids],
        )
