"""Purchases read from the database into DuckDB: the input of RFM, lifecycle and CLV.

They are read from the replica when there is one (cim.core.replica). Rows cross as Arrow record batches of plain
columns, a chunk at a time: on PostgreSQL as the CSV of a `COPY`, which Arrow parses in C. CLV needs every
purchase; RFM and the lifecycle need only each customer's totals, which the database sums in one grouped scan, so a
tenth of the rows cross.
"""

import io
from contextlib import nullcontext
from datetime import datetime

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import connection

from cim.activities.models import Order
from cim.core.replica import read_connection, replica_reads

CHUNK = 200_000
COPY_BLOCK = 4 * 1024**2
SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("ordered_at", pa.timestamp("us", tz="UTC")), ("amount", pa.float64())]
)
# Paid orders, also when partly refunded; fully refunded, cancelled and unpaid ones are no purchases.
COUNTED = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)
TOTALS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("orders", pa.int64()),
        ("spent", pa.float64()),
        ("first_at", pa.timestamp("us", tz="UTC")),
        ("last_at", pa.timestamp("us", tz="UTC")),
    ]
)


def customer_totals(*, until: datetime) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a `totals(customer_id, orders, spent, first_at, last_at)` table: each customer's
    counted orders placed before `until`, their net sum, and the first and last order time."""
    table = connection.ops.quote_name(Order._meta.db_table)
    sql = (
        f"SELECT customer_id, count(*), sum(net_amount), min(ordered_at), max(ordered_at) FROM {table} "
        "WHERE status IN (%s, %s) AND ordered_at < %s GROUP BY customer_id"
    )
    params = [*COUNTED, connection.ops.adapt_datetimefield_value(until)]
    return duckdb_with("totals", query_table(sql, params, TOTALS_SCHEMA))


def duckdb_with(name: str, table: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Days begin at midnight where the business is: `date_trunc('day', …)` follows the session's zone.
    con.execute("SET TimeZone = ?", [settings.TIME_ZONE])
    con.register("incoming", table)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
    con.unregister("incoming")
    return con


def purchases(*, until: datetime | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a `purchases(customer_id, ordered_at, amount)` table of the counted orders
    placed before `until` (all when None)."""
    sql = f"SELECT customer_id, ordered_at, net_amount FROM {connection.ops.quote_name(Order._meta.db_table)} "
    sql += "WHERE status IN (%s, %s)"
    params: list = list(COUNTED)
    if until is not None:
        sql += " AND ordered_at < %s"
        params.append(connection.ops.adapt_datetimefield_value(until))
    # Read here, in this thread: DuckDB would pull a lazy stream from its own threads, and a database
    # connection belongs to the thread that opened it.
    return duckdb_with("purchases", query_table(sql, params, SCHEMA))


def query_table(sql: str, params: list, schema: pa.Schema, *, replica: bool = True) -> pa.Table:
    """Any query's rows as an Arrow table of `schema` (integer, double, text and time columns), a chunk at a time;
    for aggregates the database already grouped, so only one row per customer or product crosses. Read from the
    replica when there is one, unless `replica` is false: what this process just wrote may not be there yet."""
    with replica_reads() if replica else nullcontext(), read_connection().cursor() as cursor:
        if connection.vendor == "postgresql":
            return _copied_table(cursor, sql, params, schema)
        cursor.execute(sql, params)
        batches = []
        while rows := cursor.fetchmany(CHUNK):
            columns = [_column(values, f.type) for values, f in zip(zip(*rows, strict=True), schema, strict=True)]
            batches.append(pa.record_batch(columns, schema=schema))
        return pa.Table.from_batches(batches, schema=schema)


def _copied_table(cursor, sql: str, params: list, schema: pa.Schema) -> pa.Table:
    """The rows as PostgreSQL's CSV, parsed by Arrow a block at a time: psycopg would make a Python object of
    every value first (its times alone took half of an hourly refresh's reading)."""
    # Bound here: Django's cursor passes no parameters to a COPY.
    query = psycopg.ClientCursor(cursor.connection).mogrify(sql, params)
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        stream = _CopyStream(copy)
        if stream.at_end():  # Arrow refuses an empty file
            return schema.empty_table()
        reader = pa_csv.open_csv(
            io.BufferedReader(stream, COPY_BLOCK),
            read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=COPY_BLOCK),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            # PostgreSQL writes NULL unquoted and the empty text as "".
            convert_options=pa_csv.ConvertOptions(
                column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
        return pa.Table.from_batches(list(reader), schema=schema)


class _CopyStream(io.RawIOBase):
    """A `COPY … TO STDOUT` as a readable file."""

    def __init__(self, copy):
        self._copy = copy
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        if not self._rest:
            self._rest = self._copy.read()  # empty once the rows are all read
        return not self._rest

    def readinto(self, buffer) -> int:
        if self.at_end():
            return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def _column(values: tuple, type_: pa.DataType) -> pa.Array:
    if pa.types.is_floating(type_):
        # SQLite gives sums of money as floats or integers: doubles for all.
        return pa.array([None if v is None else float(v) for v in values], type_)
    if pa.types.is_timestamp(type_):
        # SQLite keeps times as UTC text, which Arrow parses a column at a time; a column declared as a time comes
        # through Django's converter as datetimes already.
        times = pa.array(values)
        if not pa.types.is_timestamp(times.type):
            times = times.cast(pa.timestamp(type_.unit))
        return times.cast(type_)
    return pa.array(values, type_)
