"""Backup drill on the 1M-customer SQLite database: `python bench/backup_bench.py`.

Builds (once, shared with the search bench) bench/data/customers-N, then times `cim backup create`, `cim backup
verify` and `cim restore` into a fresh installation (a new data dir with no database, the same keys and backup
folder), and compares every table's row count and checksum (SHA-256 of its rows in rowid order) between the
source and the restored database. Target: restore of 1,000,000 customers in at most 60 s. Writes its section of
bench/RESULTS.md.
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402
from search_bench import build, setup_django  # noqa: E402

RESTORE_TARGET = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


# Written by the drill itself after the snapshot (audit events of create, verify and restore): compared up to the
# last row the source had before. The catalog is not compared: a restore rebuilds it from the backup folder.
DRILL_TABLES = ("audit_auditevent",)
CATALOG = "backups_backup"


def table_checksums(path: Path, upto: dict[str, int] | None = None) -> dict[str, tuple[int, str]]:
    """(rows, SHA-256 of the rows in rowid order) of every ordinary table, read straight from the file; tables in
    `upto` only up to that rowid."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    found = {}
    try:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' "
                "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'search_document_%' ORDER BY name"
            )
        ]
        for table in tables:
            digest, rows = hashlib.sha256(), 0
            without_rowid = (
                "WITHOUT ROWID"
                in db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0].upper()
            )
            order = "" if without_rowid else " ORDER BY rowid"
            where = f" WHERE rowid <= {int(upto[table])}" if upto and table in upto else ""
            for row in db.execute(f'SELECT * FROM "{table}"{where}{order}'):
                digest.update(repr(row).encode())
                rows += 1
            found[table] = (rows, digest.hexdigest())
    finally:
        db.close()
    return found


def backup_duration(data_dir: Path, backup_id: int) -> float:
    with sqlite3.connect(data_dir / "cim.sqlite3") as db:
        return db.execute("SELECT duration FROM backups_backup WHERE id = ?", (backup_id,)).fetchone()[0]


CPU: dict[str, float] = {}  # CPU seconds (user + system) of each command, which the other work does not inflate


def cim(env: dict, *args: str) -> tuple[float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from cim.cli import main; main(sys.argv[1:])", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[args[-1] if args[0] == "restore" else args[1]] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    if done.returncode != 0:
        raise SystemExit(f"cim {' '.join(args)} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1]


def main() -> None:
    args = parse_args()
    data_dir = (BENCH / "data" / f"customers-{args.customers}").resolve()
    build(data_dir, args.customers, args.seed)
    setup_django(data_dir)  # the key file is generated into data_dir by the first backup
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a database built before the backups app has no catalog yet

    backups = data_dir / "backups"
    env = {
        **os.environ,
        "PYTHONPATH": str(BENCH.parent / "src"),
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(data_dir),
        "CIM_BACKUP_DIR": str(backups),
        "CIM_ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("CIM_DATABASE_URL", None)
    env.pop("CIM_BENCH_READY", None)
    database = data_dir / "cim.sqlite3"
    with sqlite3.connect(database) as db:
        size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
        upto = {t: db.execute(f'SELECT coalesce(max(rowid), 0) FROM "{t}"').fetchone()[0] for t in DRILL_TABLES}
    source = table_checksums(database, upto)  # the source as the snapshot will see it
    source.pop(CATALOG, None)

    create_s, created = cim(env, "backup", "create")
    backup = json.loads(created)
    create_work = backup_duration(data_dir, backup["id"])
    verify_s, _ = cim(env, "backup", "verify", str(backup["id"]))
    key = (data_dir / "backup_key").read_text().strip()

    fresh = data_dir.parent / f"restored-{args.customers}"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    fresh_env = {**env, "CIM_DATA_DIR": str(fresh), "CIM_BACKUP_KEY": key, "CIM_SEARCH_KEY": settings.CIM_SEARCH_KEY}
    restore_s, restored_out = cim(fresh_env, "restore", str(backups / backup["file"]), "--yes")
    restore_cpu = CPU["--yes"]
    restore_work = json.loads(restored_out)["seconds"]

    restored = table_checksums(fresh / "cim.sqlite3", upto)
    restored.pop(CATALOG, None)
    differing = [t for t in source if source[t] != restored.get(t)]
    counts_equal = {t: rows for t, (rows, _) in source.items()} == {t: rows for t, (rows, _) in restored.items()}
    customers = source["customers_customer"][0]
    total_rows = sum(rows for rows, _ in source.values())

    met = "yes" if restore_work <= RESTORE_TARGET else "no"
    lines = [
        f"{platform.machine()}, {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"{customers:,} customers, {total_rows:,} rows in {len(source)} tables, database {size / 1e9:.2f} GB; "
        f"{os.cpu_count()} cores shared with other work (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        "| step | result | target |",
        "|---|---|---|",
        f"| `cim backup create` (online backup API, zstd level 3, AES-256-GCM) | {create_work:.1f} s "
        f"({create_s:.1f} s with start-up; CPU {CPU['create']:.1f} s), file "
        f"{backup['size'] / 1e9:.2f} GB ({backup['size'] / size:.0%} of the database) | |",
        f"| `cim backup verify` (SHA-256, decrypt, integrity_check, row counts) | {verify_s:.1f} s "
        f"(CPU {CPU['verify']:.1f} s) | |",
        f"| restore into a fresh installation (checksum, decrypt, unpack, SQLite backup API into the new file, "
        f"catalog) | **{restore_work:.1f} s** | ≤ {RESTORE_TARGET:.0f} s: {met} |",
        f"| the whole `cim restore` command, with Python and Django starting | {restore_s:.1f} s "
        f"(CPU {restore_cpu:.1f} s) | |",
        f"| row counts, source vs restored, every table | {'equal' if counts_equal else 'DIFFERENT'} | equal |",
        f"| checksums of every table's rows | {len(source) - len(differing)} of {len(source)} equal"
        f"{' (differ: ' + ', '.join(differing) + ')' if differing else ''} | all |",
    ]
    write_section("Backup drill: create, verify, restore at 1M customers", lines, args.results)
    print("\n".join(lines))
    shutil.rmtree(fresh, ignore_errors=True)
    if differing or not counts_equal:
        raise SystemExit("the restored database differs from the source")


if __name__ == "__main__":
    main()
