"""Monthly partitions of the tables that grow with time, on PostgreSQL (declarative range partitioning).

Behaviour events, interactions and audit events are partitioned by the month of their time, so a month is read,
archived or dropped on its own and no index outgrows memory. A migration turns each existing table into the
partition of everything before next month (no rows copied, no index rebuilt, no long lock: see
`table_partition_by_month`); the worker then keeps `MONTHS_AHEAD` months of empty partitions ready
(`partitions_create_ahead`), and a default partition catches any time outside them, such as a device clock set to
2099, so no row is ever refused.

PostgreSQL requires every unique key of a partitioned table to include the partition column: these tables' keys
become (id, time) and (source, message id, time) there, and no foreign key points into them. Orders stay one table:
an order number must be unique across all time, and order lines and refunds point at their order.
SQLite keeps plain tables; nothing here runs there.
"""

import datetime as dt
import re
from dataclasses import dataclass

from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

MONTHS_AHEAD = 3
# The model and the time column that places each row in its month.
MONTHLY = (
    ("activities.BehaviourEvent", "occurred_at"),
    ("activities.Interaction", "occurred_at"),
    ("audit.AuditEvent", "at"),
)
BOUNDS = re.compile(r"FROM \((?:MINVALUE|'([^']+)')\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool = False
    lower: dt.datetime | None = None  # None: from the beginning of time
    upper: dt.datetime | None = None

    @classmethod
    def parse(cls, name: str, bounds: str) -> "Partition":
        """From the bounds as PostgreSQL prints them: FOR VALUES FROM (…) TO (…), or DEFAULT."""
        if bounds == "DEFAULT":
            return cls(name, default=True)
        lower, upper = BOUNDS.search(bounds).groups()
        return cls(name, lower=lower and dt.datetime.fromisoformat(lower), upper=dt.datetime.fromisoformat(upper))

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return not self.default and (self.lower is None or self.lower < end) and self.upper > start

    def covers(self, start: dt.datetime, end: dt.datetime) -> bool:
        return not self.default and (self.lower is None or self.lower <= start) and self.upper >= end


def month_start(moment: dt.datetime) -> dt.datetime:
    """The first instant of `moment`'s month in the installation's time zone."""
    local = timezone.localtime(moment)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: dt.datetime) -> dt.datetime:
    year, month = divmod(start.month, 12)
    return start.replace(year=start.year + year, month=month + 1)


def _literal(moment: dt.datetime) -> str:
    return f"'{moment.isoformat()}'"


def _month_name(table: str, start: dt.datetime) -> str:
    return f"{table}_y{start.year}m{start.month:02d}"


def is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))", [f'"{table}"']
        )
        return cursor.fetchone()[0]


def partitions(table: str) -> list[Partition]:
    """The partitions of `table`, oldest first, the default last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = "
            "i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [f'"{table}"'],
        )
        found = [Partition.parse(name, bounds) for name, bounds in cursor.fetchall()]
    return sorted(found, key=lambda p: (p.default, p.lower is not None, p.lower or 0))


def _monthly_tables() -> list[tuple[str, str]]:
    return [(apps.get_model(label)._meta.db_table, column) for label, column in MONTHLY]


def partitions_create_ahead(*, now: dt.datetime | None = None, months: int = MONTHS_AHEAD) -> list[str]:
    """Create the monthly partitions up to `months` after the current one, and the default partition, on every
    partitioned table; returns the partitions created. Idempotent."""
    if connection.vendor != "postgresql":
        return []
    created = []
    for table, column in _monthly_tables():
        if is_partitioned(table):
            created += _months_ahead_create(table, column, now=now or timezone.now(), months=months)
    return created


def partitions_not_ready(*, now: dt.datetime | None = None) -> list[str]:
    """The partitioned tables without a partition for next month: its rows would go to the default one."""
    if connection.vendor != "postgresql":
        return []
    start = _next_month(month_start(now or timezone.now()))
    end = _next_month(start)
    return [
        table
        for table, _column in _monthly_tables()
        if is_partitioned(table) and not any(p.covers(start, end) for p in partitions(table))
    ]


def _months_ahead_create(table: str, column: str, *, now: dt.datetime, months: int) -> list[str]:
    """The default partition and each month from the current one to `months` ahead that no partition holds yet."""
    created = []
    existing = partitions(table)
    if not any(p.default for p in existing):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
        created.append(f"{table}_default")
    start = month_start(now)
    for _ in range(months + 1):
        end = _next_month(start)
        if not any(p.overlaps(start, end) for p in existing):
            created.append(_month_attach(table, column, start, end))
        start = end
    return created


def _month_attach(table: str, column: str, start: dt.datetime, end: dt.datetime) -> str:
    """Create the partition of [start, end), moving into it the rows the default partition holds for that month.

    Built beside the table and then attached: attaching locks the table against schema changes only, where
    creating a partition in place would lock out every reader and writer for a moment."""
    name = _month_name(table, start)
    window = f'"{column}" >= {_literal(start)} AND "{column}" < {_literal(end)}'
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{table}_default" WHERE {window} RETURNING *) INSERT INTO "{name}" '
            "SELECT * FROM moved"
        )
        cursor.execute(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_in_month" CHECK ({window})')
        cursor.execute(
            f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})'
        )
        cursor.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_in_month"')
    return name


def table_partition_by_month(table: str, column: str, *, now: dt.datetime | None = None) -> None:
    """Turn the plain `table` into one partitioned by the month of `column`, keeping its name, rows, ids, indexes,
    constraints and foreign keys. For a migration with `atomic = False`; does nothing when already done.

    The rows stay where they are: the old table becomes the partition of everything before next month. Its new
    keys are built first, CONCURRENTLY, and a validated CHECK proves its range, so the swap itself is a moment of
    renames and an attach that reads no rows."""
    if is_partitioned(table):
        return
    boundary = _next_month(month_start(now or timezone.now()))
    old = f"{table}_before_y{boundary.year}m{boundary.month:02d}"
    keys, checks, foreign_keys, indexes = _table_definition(table)
    # A run cut short leaves what it built; that is not part of the table's own definition.
    built = {_short(name, "_p") for name, _, _ in keys} | {_short(table, "_range")}
    checks = [(name, sql) for name, sql in checks if name not in built]
    indexes = [(name, sql) for name, sql in indexes if name not in built]
    if referenced := _referencing_keys(table):
        raise RuntimeError(f"{table} is referenced by foreign keys {referenced}: drop them first")
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{_short(table, "_range")}"')
        for name, _, columns in keys:
            cursor.execute(
                f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{_short(name, "_p")}" ON "{table}" '
                f"({_key_columns(columns, column)})"
            )
        cursor.execute(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{_short(table, "_range")}" CHECK ("{column}" < '
            f"{_literal(boundary)}) NOT VALID"
        )
        cursor.execute(f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{_short(table, "_range")}"')
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
        for name, kind, _ in keys:
            cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{name}"')
            added = "PRIMARY KEY" if kind == "p" else "UNIQUE"
            cursor.execute(
                f'ALTER TABLE "{old}" ADD CONSTRAINT "{_short(name, "_p")}" {added} USING INDEX "{_short(name, "_p")}"'
            )
        for name, _definition in foreign_keys:
            cursor.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{name}" TO "{_short(name, "_old")}"')
        for name, _definition in indexes:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{_short(name, "_old")}"')
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING STORAGE) '
            f'PARTITION BY RANGE ("{column}")'
        )
        for name, definition in checks:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for name, kind, columns in keys:
            added = "PRIMARY KEY" if kind == "p" else "UNIQUE"
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {added} ({_key_columns(columns, column)})')
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:
            cursor.execute(definition)  # names the table, which is now the partitioned one
        cursor.execute(f'SELECT coalesce(max(id), 0) + 1 FROM "{old}"')
        next_id = cursor.fetchone()[0]
        cursor.execute(f'ALTER TABLE "{old}" ALTER COLUMN id DROP IDENTITY')
        cursor.execute(
            f'ALTER TABLE "{table}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {next_id})'
        )
        cursor.execute(
            f'ALTER TABLE "{table}" ATTACH PARTITION "{old}" FOR VALUES FROM (MINVALUE) TO ({_literal(boundary)})'
        )
        cursor.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT "{_short(table, "_range")}"')
    _months_ahead_create(table, column, now=now or timezone.now(), months=MONTHS_AHEAD)


def _table_definition(table: str):
    """(unique keys as (name, 'p' or 'u', columns), checks, foreign keys and plain indexes as (name, SQL))."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid), ARRAY(SELECT attname FROM unnest(conkey) WITH "
            "ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.attnum ORDER BY "
            "n) FROM pg_constraint WHERE conrelid = to_regclass(%s) ORDER BY conname",
            [f'"{table}"'],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = "
            "to_regclass(%s) AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = indexrelid) ORDER BY 1",
            [f'"{table}"'],
        )
        indexes = [(name.strip('"'), definition) for name, definition in cursor.fetchall()]
    keys = [(name, kind, columns) for name, kind, _sql, columns in constraints if kind in "pu"]
    checks = [(name, sql) for name, kind, sql, _columns in constraints if kind == "c"]
    foreign_keys = [(name, sql) for name, kind, sql, _columns in constraints if kind == "f"]
    return keys, checks, foreign_keys, indexes


def _referencing_keys(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE confrelid = to_regclass(%s)", [f'"{table}"'])
        return [name for (name,) in cursor.fetchall()]


def _key_columns(columns: list[str], column: str) -> str:
    return ", ".join(f'"{name}"' for name in [*columns, *([column] if column not in columns else [])])


def _short(name: str, suffix: str) -> str:
    """`name` + `suffix` within PostgreSQL's 63-byte names."""
    return name[: 63 - len(suffix)] + suffix
