"""Each customer's order totals and RFM scores kept in `CustomerScore`, where segment rules, lists and the customer
page read them. The database sums the orders per customer, DuckDB scores them and compares them with the stored
rows, and only the rows that differ are written back, so an hourly refresh of a quiet day writes little."""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
from django.db import connection, transaction
from django.utils import timezone

from cim.analytics.data import customer_totals
from cim.analytics.models import CustomerScore
from cim.analytics.rfm import rfm_table

BATCH = 10_000
COLUMNS = (
    "orders",
    "total_spent",
    "first_order_at",
    "last_order_at",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_segment",
    "value_segment",
)
STORED = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("orders", pa.int64()),
        ("total_spent", pa.float64()),
        ("first_order_at", pa.timestamp("us", tz="UTC")),
        ("last_order_at", pa.timestamp("us", tz="UTC")),
        ("recency_score", pa.int64()),
        ("frequency_score", pa.int64()),
        ("monetary_score", pa.int64()),
        ("rfm_segment", pa.string()),
        ("value_segment", pa.string()),
    ]
)


@dataclass
class ScoresRun:
    customers: int  # with a counted order
    changed: int  # rows written


def _stored() -> pa.Table:
    """The stored rows that hold order figures, as they are now."""
    rows = CustomerScore.objects.filter(orders__gt=0).values_list("customer_id", *COLUMNS)
    columns = list(zip(*rows.iterator(chunk_size=BATCH), strict=True)) or [[] for _ in STORED]
    arrays = [
        pa.array([float(v) for v in values] if name == "total_spent" else values, type_)
        for (name, type_), values in zip(((f.name, f.type) for f in STORED), columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=STORED)


def scores_refresh(*, as_of: datetime | None = None, totals: duckdb.DuckDBPyConnection | None = None) -> ScoresRun:
    """Bring every customer's order totals and RFM scores up to date; returns how many rows changed. `totals` is
    a connection from `customer_totals` to reuse (the caller closes it)."""
    as_of = as_of or timezone.now()
    con = totals or customer_totals(until=as_of)
    rfm_table(con, as_of=as_of)
    con.register("stored", _stored())
    # New figures that differ from the stored ones, and stored figures of customers with no counted order left.
    changed = con.execute(
        """
        WITH fresh AS (
            SELECT t.customer_id, t.orders, round(t.spent, 2) AS total_spent, t.first_at AS first_order_at,
                   t.last_at AS last_order_at, s.r AS recency_score, s.f AS frequency_score,
                   s.m AS monetary_score, s.segment AS rfm_segment, s.value_segment
            FROM totals t JOIN scored s USING (customer_id)
        )
        SELECT * FROM fresh
        EXCEPT SELECT customer_id, orders, round(total_spent, 2), first_order_at, last_order_at, recency_score,
                      frequency_score, monetary_score, rfm_segment, value_segment FROM stored
        UNION ALL
        SELECT customer_id, 0, 0, NULL, NULL, NULL, NULL, NULL, '', '' FROM stored
        WHERE customer_id NOT IN (SELECT customer_id FROM totals)
        """
    ).fetchall()
    customers = con.execute("SELECT count(*) FROM totals").fetchone()[0]
    if totals is None:
        con.close()
    _write(changed, timezone.now())
    return ScoresRun(customers=customers, changed=len(changed))


def _write(rows: list[tuple], now: datetime) -> None:
    """Upsert only these columns: other analyses own the rest of each row."""
    table = connection.ops.quote_name(CustomerScore._meta.db_table)
    names = ["customer_id", *COLUMNS, "churn_reasons", "refreshed_at"]
    updates = ", ".join(f"{name} = excluded.{name}" for name in [*COLUMNS, "refreshed_at"])
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT (customer_id) DO UPDATE SET {updates}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    stamp = adapt(now)
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(
                sql,
                [
                    (pk, orders, spent, adapt(first), adapt(last), r, f, m, segment, value, "[]", stamp)
                    for pk, orders, spent, first, last, r, f, m, segment, value in rows[start : start + BATCH]
                ],
            )


def stage_since_set(*, customer_ids: list[int], at: datetime) -> None:
    """Record when these customers entered their current lifecycle stage (for the time in stage)."""
    table = connection.ops.quote_name(CustomerScore._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (customer_id, orders, total_spent, rfm_segment, value_segment, churn_reasons, "
            "stage_since, refreshed_at) VALUES (%s, 0, 0, '', '', '[]', %s, %s) "
            "ON CONFLICT (customer_id) DO UPDATE SET stage_since = excluded.stage_since",
            [(pk, stamp, stamp) for pk in customer_ids],
        )
