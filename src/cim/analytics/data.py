"""Purchases read from the database into DuckDB: the input of RFM, lifecycle and CLV.

They are read from the replica when there is one (cim.core.replica). Rows cross as Arrow record batches
of plain columns, a chunk at a time. CLV needs every purchase; RFM and the
lifecycle need only each customer's totals, which the database sums in one grouped scan, so a tenth of the rows
cross.
"""

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import connection

from cim.activities.models import Order
from cim.core.replica import read_connection, replica_reads

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
    with replica_reads(), read_connection().cursor() as cursor:
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


TOTALS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("orders", pa.int64()),
        ("spent", pa.float64()),
        ("first_at", pa.timestamp("us", tz="UTC")),
        ("last_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _total_batches(until: datetime) -> Iterator[pa.RecordBatch]:
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = (
        f"SELECT customer_id, count(*), sum(net_amount), min(ordered_at), max(ordered_at) FROM {table} "
        "WHERE status IN (%s, %s) AND ordered_at < %s GROUP BY customer_id"
    )
    params = [*COUNTED, connection.ops.adapt_datetimefield_value(until)]
    sqlite = connection.vendor == "sqlite"
    with replica_reads(), read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            customers, orders, spent, first, last = zip(*rows, strict=True)
            if sqlite:
                first, last = [_sqlite_time(v) for v in first], [_sqlite_time(v) for v in last]
            yield pa.record_batch(
                [
                    pa.array(customers, pa.int64()),
                    pa.array(orders, pa.int64()),
                    pa.array(list(map(float, spent)), pa.float64()),
                    pa.array(first, TOTALS_SCHEMA.field(3).type),
                    pa.array(last, TOTALS_SCHEMA.field(4).type),
                ],
                schema=TOTALS_SCHEMA,
            )


def customer_totals(*, until: datetime) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a `totals(customer_id, orders, spent, first_at, last_at)` table: each customer's
    counted orders placed before `until`, their net sum, and the first and last order time."""
    return duckdb_with("totals", pa.Table.from_batches(list(_total_batches(until)), schema=TOTALS_SCHEMA))


def duckdb_with(name: str, table: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Days begin at midnight where the business is: `date_trunc('day', …)` follows the session's zone.
    con.execute("SET TimeZone = ?", [settings.TIME_ZONE])
    con.register("incoming", table)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
    con.unregister("incoming")
    return con


def _sqlite_time(value) -> datetime:
    """SQLite keeps times as UTC text (`2026-03-05 06:30:00[.123456]`)."""
    return datetime.fromisoformat(value).replace(tzinfo=None) if isinstance(value, str) else value


def purchases(*, until: datetime | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a `purchases(customer_id, ordered_at, amount)` table of the counted orders
    placed before `until` (all when None)."""
    # Read here, in this thread: DuckDB would pull a lazy stream from its own threads, and a database
    # connection belongs to the thread that opened it.
    return duckdb_with("purchases", pa.Table.from_batches(list(_batches(until)), schema=SCHEMA))


def query_table(sql: str, params: list, schema: pa.Schema, *, replica: bool = True) -> pa.Table:
    """Any query's rows as an Arrow table of `schema` (integer, double and time columns), a chunk at a time; for
    aggregates the database already grouped, so only one row per customer or product crosses. Read from the
    replica when there is one, unless `replica` is false: what this process just wrote may not be there yet."""
    batches = []
    with replica_reads() if replica else nullcontext(), read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            columns = [_column(values, f.type) for values, f in zip(zip(*rows, strict=True), schema, strict=True)]
            batches.append(pa.record_batch(columns, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _column(values: tuple, type_: pa.DataType) -> pa.Array:
    if pa.types.is_floating(type_):
        # PostgreSQL gives decimals for sums of money, SQLite floats or integers: doubles for all.
        return pa.array([None if v is None else float(v) for v in values], type_)
    if pa.types.is_timestamp(type_) and connection.vendor == "sqlite":
        # SQLite keeps times as UTC text, which Arrow parses a column at a time.
        return pa.array(values, pa.string()).cast(pa.timestamp(type_.unit)).cast(type_)
    return pa.array(values, type_)
