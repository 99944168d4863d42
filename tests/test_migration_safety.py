"""Migrations that are safe on a live PostgreSQL: every migration's SQL, as Django runs it there, is checked by
squawk (a linter for PostgreSQL migrations) for long locks on big tables — an index built without CONCURRENTLY, a
column type changed in place, a constraint validated under an exclusive lock. Findings of migrations older than
the check are listed in deploy/migration-lint-baseline.txt; a new one fails."""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

ROOT = Path(__file__).resolve().parents[1]
SQUAWK = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
# Not about locks: Django's column types, and the transaction and timeouts `cim migrate` sets itself
# (lock_timeout before migrating, cim.core.migration_ops; each migration in its own transaction).
NOT_ABOUT_LOCKS = [
    "prefer-text-field",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "transaction-nesting",
    "require-lock-timeout",
    "require-statement-timeout",
    "ban-drop-default",  # Django adds a column with a default and drops it: both instant since PostgreSQL 11
    "prefer-robust-stmts",  # IF NOT EXISTS: Django records which migrations ran, and does not run one twice
]

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL PostgreSQL runs is checked")


# No client names an index, and renaming one waits for no reader or writer (PostgreSQL 12 and later): squawk's
# renaming-object rule is about tables and columns that running code still uses.
INDEX_RENAME = re.compile(r"^ALTER INDEX \S+ RENAME TO \S+;$")
STATEMENT_TABLE = re.compile(r'^(?:ALTER TABLE "(\w+)"|CREATE (?:UNIQUE )?INDEX (?:CONCURRENTLY )?"\w+" ON "(\w+)")')


def _lintable(sql: str) -> str:
    """The migration's SQL without the statements on tables it creates itself: a lock on a new, empty table blocks
    nobody (Django adds a new table's foreign keys and indexes after creating it, which squawk cannot tell); and
    without renamed indexes."""
    created = set(re.findall(r'CREATE TABLE "(\w+)"', sql))
    kept = []
    for line in sql.splitlines():
        match = STATEMENT_TABLE.match(line)
        if (not match or (match.group(1) or match.group(2)) not in created) and not INDEX_RENAME.match(line):
            kept.append(line)
    return "\n".join(kept) + "\n"


def _baseline() -> set[tuple[str, str, str]]:
    lines = (ROOT / "deploy" / "migration-lint-baseline.txt").read_text().splitlines()
    return {tuple(line.split()) for line in lines if line and not line.startswith("#")}


def _squawk(files: list[Path]) -> set[tuple[str, str, str]]:
    """(app, migration, rule) of every finding in these `<app>__<migration>.sql` files."""
    done = subprocess.run(
        [SQUAWK, "--reporter", "json", "--pg-version", "15", "--exclude", ",".join(NOT_ABOUT_LOCKS), *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1) and done.stdout, done.stderr  # 1: findings
    return {(*Path(f["file"]).stem.split("__"), f["rule_name"]) for f in json.loads(done.stdout)}


def test_the_linter_finds_a_lock_on_an_existing_table(tmp_path):
    unsafe = tmp_path / "customers__9999_unsafe.sql"
    unsafe.write_text('CREATE INDEX "customer_notes_idx" ON "customers_customer" ("notes");\n')
    assert _squawk([unsafe]) == {("customers", "9999_unsafe", "require-concurrent-index-creation")}


def test_every_migration_is_safe_on_a_live_database(db, tmp_path):
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    files = []
    for app, name in sorted(loader.disk_migrations):
        if loader.disk_migrations[app, name].__module__.startswith("cim."):
            sql = io.StringIO()
            call_command("sqlmigrate", app, name, stdout=sql)
            files.append(tmp_path / f"{app}__{name}.sql")
            files[-1].write_text(_lintable(sql.getvalue()))
    new = sorted(_squawk(files) - _baseline())
    assert not new, "Migrations that would lock a big table on a live database (docs/deploy.md):\n" + "\n".join(
        f"{app} {name}: {rule}" for app, name, rule in new
    )


def test_statements_on_new_tables_and_index_renames_are_not_linted():
    sql = (
        'CREATE TABLE "new_t" ("id" bigint);\n'
        'ALTER TABLE "new_t" ADD COLUMN "w" bigint REFERENCES "other" ("id");\n'
        'CREATE INDEX "new_t_w" ON "new_t" ("w");\n'
        'CREATE INDEX "old_t_x" ON "old_t" ("x");\n'
        "ALTER INDEX old_t_x RENAME TO t_x_idx;\n"
    )
    assert _lintable(sql).splitlines() == [
        'CREATE TABLE "new_t" ("id" bigint);',
        'CREATE INDEX "old_t_x" ON "old_t" ("x");',
    ]
