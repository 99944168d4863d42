"""Purchases read from the database into DuckDB: the one input of RFM and CLV.

Rows cross as Arrow record batches of plain columns (customer, time, net amount), a chunk at a time, so the
database does one sequential scan and DuckDB does every grouping and ranking.
"""

from collections.abc import Iterator
from datetime import datetime

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import connection

from cim.activities.models import Order

CHUNK = 200_000
SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("ordered_at", pa.timestamp("us", tz="UTC")), ("amount", pa.float64())]
)
# Paid orders, also when partly refunded; fully refunded, cancelled and unpaid ones are no purchases.
COUNTED = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)


def _batches(until: datetime | None) -> Iterator[pa.RecordBatch]:
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = f"SELECT customer_id, ordered_at, net_amount FROM {table} WHERE status IN (%s, %s)"
    params: list = list(COUNTED)
    if until is not None:
        sql += " AND ordered_at < %s"
        params.append(connection.ops.adapt_datetimefield_value(until))
    sqlite = connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            customers, times, amounts = zip(*rows, strict=True)
            if sqlite:
                times = [_sqlite_time(value) for value in times]
            yield pa.record_batch(
                [
                    pa.array(customers, pa.int64()),
                    pa.array(times, SCHEMA.field(1).type),
                    # PostgreSQL gives decimals, SQLite floats: both become doubles, enough for sums of money here.
                    pa.array(list(map(float, amounts)), pa.float64()),
                ],
                schema=SCHEMA,
            )


def _sqlite_time(value) -> datetime:
    """SQLite keeps times as UTC text (`2026-03-05 06:30:00[.123456]`)."""
    return datetime.fromisoformat(value).replace(tzinfo=None) if isinstance(value, str) else value


def purchases(*, until: datetime | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a `purchases(customer_id, ordered_at, amount)` table of the counted orders
    placed before `until` (all when None)."""
    # Read here, in this thread: DuckDB would pull a lazy stream from its own threads, and a database
    # connection belongs to the thread that opened it.
    table = pa.Table.from_batches(list(_batches(until)), schema=SCHEMA)
    con = duckdb.connect()
    # Days begin at midnight where the business is: `date_trunc('day', …)` follows the session's zone.
    con.execute("SET TimeZone = ?", [settings.TIME_ZONE])
    con.register("purchase_batches", table)
    con.execute("CREATE TABLE purchases AS SELECT * FROM purchase_batches")
    con.unregister("purchase_batches")
    return con
