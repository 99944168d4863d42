"""What differs between the databases: taking a consistent snapshot with its row counts, checking a snapshot, and
putting one in place of the live database.

SQLite: SQLite's online backup API, which copies a consistent snapshot while the server keeps writing (WAL), and
which also restores: it replaces the live database's pages inside one transaction, so other connections see the
old database or the new one, never half of each. PostgreSQL: pg_dump in custom format, inside a REPEATABLE READ
transaction whose exported snapshot also gives the row counts, and pg_restore.
"""

import os
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
from django.apps import apps
from django.db import connection
from psycopg import sql


class RestoreError(Exception):
    """A dump could not be taken, checked or restored; the message says why."""


def table_names() -> list[str]:
    """Every table of an installed model (and Django's migration table): the same names on every engine."""
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed}
    tables |= {
        f.m2m_db_table()
        for m in apps.get_models()
        for f in m._meta.local_many_to_many
        if f.remote_field.through._meta.auto_created
    }
    return sorted(tables | {"django_migrations"})


def dump_name(engine: str) -> str:
    return "database.sqlite3" if engine == "sqlite" else "database.pgdump"


# --- SQLite


def sqlite_snapshot(target: Path) -> dict[str, int]:
    """Copy the live database to `target` with the backup API; the row counts of the copy."""
    connection.ensure_connection()
    copy = sqlite3.connect(target)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()
    return sqlite_counts(target)


def sqlite_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in table_names() if t in present}
    finally:
        db.close()


def sqlite_check(path: Path) -> dict[str, int]:
    """PRAGMA integrity_check of a snapshot (raises if it finds anything), then its row counts."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()
    if problems != ["ok"]:
        raise RestoreError("integrity_check: " + "; ".join(problems[:5]))
    return sqlite_counts(path)


def sqlite_restore(path: Path) -> None:
    """Replace the live database's content by the snapshot's, in one transaction of the backup API."""
    connection.close()
    connection.ensure_connection()
    live = connection.connection
    # Through a rollback journal rather than the WAL, each page is written once instead of into the WAL and then
    # again into the file. SQLite only switches when no other connection has the database open; else it stays WAL.
    wal = live.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    if wal:
        live.execute("PRAGMA journal_mode=DELETE")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(live)
    except sqlite3.Error as error:
        raise RestoreError(f"SQLite restore failed: {error}") from error
    finally:
        source.close()
        if wal:
            live.execute("PRAGMA journal_mode=WAL")
        connection.close()  # the next query opens the restored database with Django's settings


# --- PostgreSQL


def _pg_env_and_args(database: str | None = None) -> tuple[dict, list[str], str]:
    params = connection.settings_dict
    env = dict(os.environ)
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = params["PASSWORD"]
    args = []
    if params.get("HOST"):
        args += ["-h", params["HOST"]]
    if params.get("PORT"):
        args += ["-p", str(params["PORT"])]
    if params.get("USER"):
        args += ["-U", params["USER"]]
    return env, args, database or params["NAME"]


def _pg_connect(database: str | None = None, **kwargs) -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        dbname=database or params["NAME"],
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        host=params.get("HOST") or None,
        port=params.get("PORT") or None,
        **kwargs,
    )


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RestoreError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


def _pg_counts(db: psycopg.Connection) -> dict[str, int]:
    present = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    query = sql.SQL("SELECT count(*) FROM {}")
    return {t: db.execute(query.format(sql.Identifier(t))).fetchone()[0] for t in table_names() if t in present}


def postgres_snapshot(target: Path) -> dict[str, int]:
    """pg_dump (custom format, uncompressed: zstandard does that) and row counts from one exported snapshot."""
    env, args, name = _pg_env_and_args()
    with _pg_connect() as db:
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = db.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts = _pg_counts(db)
        _run(
            ["pg_dump", *args, "--format=custom", "--compress=0", f"--snapshot={snapshot}", "-f", str(target), name],
            env,
        )
        db.rollback()
    return counts


def postgres_check(path: Path) -> dict[str, int]:
    """pg_restore into a scratch database that is dropped afterwards; the row counts found there."""
    env, args, name = _pg_env_and_args()
    scratch = f"{name[:40]}_verify_{os.getpid()}"
    with _pg_connect("postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
        try:
            _run(
                ["pg_restore", *args, "--no-owner", "--no-privileges", "--exit-on-error", "-d", scratch, str(path)], env
            )
            with _pg_connect(scratch) as db:
                return _pg_counts(db)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def postgres_restore(path: Path) -> None:
    """pg_restore --clean into the configured database, all or nothing: its script, run by psql in one transaction.

    PostgreSQL 15's --clean script drops each partition's keys on their own, which a partition refuses for the keys
    it inherits (cim.core.partitions); those statements are left out, and dropping the partition takes them along.
    """
    env, args, name = _pg_env_and_args()
    env["PGOPTIONS"] = "-c lock_timeout=60000"  # a server still holding a table: fail after a minute, not hang
    connection.close()
    toc = subprocess.run(["pg_restore", "-l", str(path)], env=env, capture_output=True, check=False)
    if toc.returncode != 0:
        raise RestoreError(f"pg_restore failed: {toc.stderr.decode(errors='replace').strip()[-2000:]}")
    partitions = {line.split()[6] for line in toc.stdout.splitlines() if b" TABLE ATTACH " in line}
    script_command = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "-f", "-", str(path)]
    psql_command = ["psql", *args, "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-d", name, "-f", "-"]
    with tempfile.TemporaryFile() as script_errors, tempfile.TemporaryFile() as psql_errors:
        script = subprocess.Popen(script_command, env=env, stdout=subprocess.PIPE, stderr=script_errors)
        psql = subprocess.Popen(
            psql_command, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_errors
        )
        try:
            for line in _partition_key_drops_removed(script.stdout, partitions):
                psql.stdin.write(line)
            psql.stdin.close()
        except BrokenPipeError:  # psql stopped at an error: it says which below
            script.kill()
        for process, errors in ((script, script_errors), (psql, psql_errors)):
            if process.wait() != 0:
                errors.seek(0)
                raise RestoreError(
                    f"{process.args[0]} failed: {errors.read().decode(errors='replace').strip()[-2000:]}"
                )


PARTITION_KEY_DROP = re.compile(rb"^ALTER TABLE IF EXISTS ONLY (?:\S+\.)?(\S+) DROP CONSTRAINT ")


def _partition_key_drops_removed(script: Iterable[bytes], partitions: set[bytes]) -> Iterator[bytes]:
    """The lines of a pg_restore script, without the drops of the keys of `partitions`; table data is passed as is."""
    in_data = False
    for line in script:
        if in_data:
            in_data = line != b"\\.\n"
        elif line.startswith(b"COPY ") and line.rstrip().endswith(b"FROM stdin;"):
            in_data = True
        elif (match := PARTITION_KEY_DROP.match(line)) and match.group(1) in partitions:
            continue
        yield line


SNAPSHOT = {"sqlite": sqlite_snapshot, "postgresql": postgres_snapshot}
CHECK = {"sqlite": sqlite_check, "postgresql": postgres_check}
RESTORE = {"sqlite": sqlite_restore, "postgresql": postgres_restore}
