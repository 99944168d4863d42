"""Set-based inserts for bulk paths (demo loads, imports, search keys): plain tuples in one statement.

`bulk_create` costs ~10 µs a row here (model instances, per-field preparation, 999-parameter statements on
SQLite); plain tuples cost ~1 µs, and a load writes ~40 rows per customer.
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator

from django.db import connection, transaction


def value_adapter(field) -> Callable:
    """How a field's Python value becomes a query parameter: only dates, JSON and encrypted fields need Django's
    help (an encrypted field encrypts here, so bulk paths never write a sensitive value in plaintext)."""
    if getattr(field, "encrypted", False):
        return lambda value: field.get_db_prep_value(value, connection)
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if kind == "DateField":
        return connection.ops.adapt_datefield_value
    if kind == "JSONField":
        return lambda value: field.get_db_prep_save(value, connection)
    return lambda value: value


def insert_rows(
    model, fields: list[str], rows: Iterable[tuple], *, first_pk: int | None = None, ignore_conflicts: bool = False
) -> None:
    """INSERT `rows` (tuples in `fields` order, values already adapted) into `model`'s table.

    With `first_pk`, the first column is an offset and the database adds `first_pk` to it: a batch's child
    rows can name their customer by position without rebuilding millions of tuples in Python. With
    `ignore_conflicts`, a row that would break a unique constraint is left out, as `bulk_create` does.
    """
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    columns = ", ".join(q(model._meta.get_field(name).column) for name in fields)
    if connection.vendor == "postgresql":
        # COPY: several times faster than INSERTs on PostgreSQL, and what DESIGN names for bulk loads. COPY has no
        # ON CONFLICT, so rows that may conflict go through a temporary table.
        if first_pk is not None:
            rows = ((row[0] + first_pk, *row[1:]) for row in rows)
        with transaction.atomic(), connection.cursor() as cursor:
            if not ignore_conflicts:
                _copy(cursor, table, columns, rows)
                return
            incoming = _copied_to_temporary(cursor, model, columns, rows, "incoming")
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {incoming} ON CONFLICT DO NOTHING")
            cursor.execute(f"DROP TABLE {incoming}")
        return
    placeholders = ["%s"] * len(fields)
    if first_pk is not None:
        placeholders[0] = f"%s + {int(first_pk)}"
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    sql = f"{verb} INTO {table} ({columns}) VALUES ({', '.join(placeholders)})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def update_rows(model, key: str, fields: list[str], rows: Iterable[tuple]) -> None:
    """Set `fields` of the rows of `model` whose `key` is each row's first value to the row's other values (already
    adapted). On PostgreSQL the rows are copied into a temporary table and joined in one UPDATE: 966,000 RFM
    scores in 25 s, where one UPDATE a row took 79 s (bench/RESULTS.md, PostgreSQL at scale)."""
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    key_column, *columns = (q(model._meta.get_field(name).column) for name in (key, *fields))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            changed = _copied_to_temporary(cursor, model, ", ".join((key_column, *columns)), rows, "changed")
            assignments = ", ".join(f"{column} = {changed}.{column}" for column in columns)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {changed} WHERE {table}.{key_column} = {changed}.{key_column}"
            )
            cursor.execute(f"DROP TABLE {changed}")
            return
        assignments = ", ".join(f"{column} = %s" for column in columns)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE {key_column} = %s", ((*row[1:], row[0]) for row in rows)
        )


def _copy(cursor, table: str, columns: str, rows: Iterable[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _copied_to_temporary(cursor, model, columns: str, rows: Iterable[tuple], name: str) -> str:
    """A temporary table of `model`'s `columns` holding `rows`, copied in; dropped at commit if not before."""
    q = connection.ops.quote_name
    table, staged = q(model._meta.db_table), q(f"{model._meta.db_table}_{name}")
    cursor.execute(f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
    _copy(cursor, staged, columns, rows)
    return staged


# SQLite takes at most 32,766 parameters in a statement.
LOOKUP_CHUNK = 10_000


def column_lookup(model, key: str, value: str, keys: list, **equal) -> list[tuple]:
    """(key, value) rows of `model` whose `key` is one of `keys` (and whose `equal` fields have those values), in
    plain SQL: the ORM prepares each of thousands of parameters one by one, a tenth of a bulk path's time."""
    if not keys:
        return []
    q = connection.ops.quote_name
    column = {name: q(model._meta.get_field(name).column) for name in (key, value, *equal)}
    select = f"SELECT {column[key]}, {column[value]} FROM {q(model._meta.db_table)} WHERE "
    also = "".join(f" AND {column[n]} = %s" for n in equal)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter: tens of thousands of placeholders cost psycopg more to parse than the query.
            cursor.execute(f"{select}{column[key]} = ANY(%s){also}", [list(keys), *equal.values()])
            return cursor.fetchall()
        found = []
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            cursor.execute(
                f"{select}{column[key]} IN ({', '.join(['%s'] * len(chunk))}){also}", [*chunk, *equal.values()]
            )
            found += cursor.fetchall()
        return found


@contextlib.contextmanager
def rare_checkpoints() -> Iterator[None]:
    """On SQLite, copy the write-ahead log into the database every ~400 MB instead of after every batch: the
    index pages that many batches touch are then written back once, not once per batch."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        default = cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_autocheckpoint = 100000")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint = {int(default)}")
