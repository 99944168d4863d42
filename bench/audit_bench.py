"""The audit chain: append rate (bulk and single), two processes appending at once, and the time and memory to
verify N events: `python bench/audit_bench.py --events 1000000`.

Builds a fresh SQLite database in bench/data/audit-N (or uses CIM_DATABASE_URL), appends N events with
`audit_record_bulk` in batches of 10,000, then `audit_record` one by one from two processes at once, then runs
`chain_verify` over the whole log and reports its time and the process's peak memory growth. Writes its section
of bench/RESULTS.md.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402


def setup(data_dir: Path) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def racer(data_dir: Path, count: int, name: str) -> None:
    """One of the two concurrent writers: `count` single appends, each in its own transaction."""
    setup(data_dir)
    from cim.audit.services import audit_record

    started = time.perf_counter()
    for i in range(count):
        audit_record(actor=None, action="bench.race", target=None, target_type="bench", target_id=f"{name}-{i}")
    print(f"{started} {time.perf_counter()}")  # the appends alone, not Django's start-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--racers", type=int, default=500, help="single appends per concurrent process")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--race", nargs=2, help=argparse.SUPPRESS)  # internal: run as a concurrent writer
    args = parser.parse_args()
    data_dir = BENCH / "data" / f"audit-{args.events}"
    if args.race:
        racer(data_dir, args.racers, args.race[1])
        return
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    setup(data_dir)
    from django.core.management import call_command
    from django.db import connection

    from cim.audit.chain import chain_verify
    from cim.audit.services import audit_record_bulk

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    for start in range(0, args.events, 10_000):
        ids = range(start, min(start + 10_000, args.events))
        audit_record_bulk(
            actor=None,
            action="bench.bulk",
            target_type="customers.customer",
            target_ids=ids,
            fields=["lifecycle_stage"],
            note="bench",
        )
    bulk_seconds = time.perf_counter() - started

    racers = [
        subprocess.Popen(
            [sys.executable, __file__, "--events", str(args.events), "--racers", str(args.racers), "--race", "x", name],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate()[0].split() for p in racers]
    codes = [p.returncode for p in racers]
    # From the first writer's first append to the last writer's last (perf_counter is system-wide on Linux).
    race_seconds = max(float(o[1]) for o in outputs) - min(float(o[0]) for o in outputs)
    connection.close()

    started = time.perf_counter()
    result = chain_verify()
    verify_seconds = time.perf_counter() - started
    # Memory: Python's own (tracemalloc), not the RSS, which grows with the database file SQLite maps into memory
    # (mmap_size) whatever the verifier keeps; in a second walk, as tracemalloc slows it too much to time it.
    tracemalloc.start()
    chain_verify()
    heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    total = args.events + 2 * args.racers
    ok = result.ok and result.checked == total and codes == [0, 0]
    lines = [
        f"`bench/audit_bench.py --events {args.events:,}`: {connection.vendor}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| measure | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        f"| append, `audit_record_bulk` (batches of 10,000) | {args.events:,} | {bulk_seconds:.1f} | "
        f"{args.events / bulk_seconds:,.0f} |",
        f"| append, `audit_record` from 2 processes at once | {2 * args.racers:,} | {race_seconds:.1f} | "
        f"{2 * args.racers / race_seconds:,.0f} |",
        f"| `chain_verify` (batches of 5,000) | {result.checked:,} | {verify_seconds:.1f} | "
        f"{result.checked / verify_seconds:,.0f} |",
        "",
        f"Verification: {'intact' if ok else 'FAILED: ' + result.message} ({result.checked:,} of {total:,} events, "
        f"both writers exited {codes}); Python's peak memory while verifying: {heap_peak:,.1f} MiB (tracemalloc, "
        "a second walk).",
    ]
    write_section("Audit chain", lines, args.results)
    print("\n".join(lines))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
