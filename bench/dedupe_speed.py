"""Duplicate detection speed at scale: `python bench/dedupe_speed.py [--customers N]`.

On the demo database of bench/search_bench.py (built once per N in bench/data/), times the duplicate check a
create runs (candidates through the indexes, then the model on them: p95 over records that share a phone, a
name and birthday, or nothing with existing customers) and the full scan of `cim dedupe` (features read from
the database, blocking, scoring, clustering, pairs written). Targets at 1M customers on 2 cores: check p95 ≤
30 ms, scan ≤ 3 minutes. Writes its section of bench/RESULTS.md.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402
from search_bench import build, machine, setup_django  # noqa: E402

CHECK_TARGET_MS, SCAN_TARGET_S = 30, 180


def check_records(count: int, seed: int) -> list[tuple[str, dict]]:
    """Records as a create would send them: a third sharing a customer's phone, a third its name and birthday
    (in another script), a third new."""
    from cim.customers.models import Customer, Phone
    from cim.quality.normalize import fold
    from cim.quality.selectors import customer_features

    rng = random.Random(seed)
    top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    ids = rng.sample(range(1, top + 1), count)
    existing = {row["unique_id"]: row for row in customer_features(ids)}
    phones = dict(Phone.objects.filter(customer_id__in=ids).values_list("customer_id", "match_key"))
    records = []
    for i, pk in enumerate(ids):
        base = existing.get(pk)
        if base is None:
            continue
        kind = ("same phone", "same name and birthday", "new")[i % 3]
        record = dict(base, unique_id=0)
        if kind == "same phone":
            record["phones"] = [phones[pk]] if pk in phones else None
            record["emails"] = None
        elif kind == "same name and birthday":
            record["name"] = fold(base["name"] or "")
            record["phones"] = record["emails"] = None
        else:
            record.update(
                phones=[f"{rng.getrandbits(128):032x}"], emails=None, name_key=f"zz{i}", name="x", name_py="x"
            )
        records.append((kind, record))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    data_dir = (BENCH / "data" / f"customers-{args.customers}").resolve()
    built = build(data_dir, args.customers, 1)
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cim.quality.selectors import duplicates_of
    from cim.quality.services import duplicates_scan

    records = check_records(args.checks, seed=1)
    for _kind, record in records[:5]:
        duplicates_of(record=record)  # warm: the model's SQL is built once per process
    times = []
    for _kind, record in records:
        started = time.perf_counter()
        duplicates_of(record=record)
        times.append((time.perf_counter() - started) * 1000)
    median, p95 = statistics.median(times), statistics.quantiles(times, n=100)[94]
    print(f"check on create: median {median:.1f} ms, p95 {p95:.1f} ms")

    started = time.perf_counter()
    result = duplicates_scan(actor=None)
    scan_seconds = time.perf_counter() - started
    print(f"scan: {result.customers:,} customers in {scan_seconds:.0f} s, {result.pairs:,} pairs")

    info = machine()
    lines = [
        f"`bench/dedupe_speed.py --customers {args.customers}`: the demo database of the search benchmark "
        f"({built['customers']:,} customers), {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {info['cpus']} CPUs "
        f"({info['cpu']}), load average at the end {', '.join(f'{v:.1f}' for v in os.getloadavg())}. The check is "
        f"what a create runs ({len(records)} records: a third share a customer's phone, a third its name and "
        "birthday, a third nothing); the scan is `cim dedupe` from reading the customers to writing the pairs.",
        "",
        "| measure | result | target | met |",
        "|---|---:|---:|:---:|",
        f"| duplicate check on create, median | {median:.1f} ms |  |  |",
        f"| duplicate check on create, p95 | {p95:.1f} ms | {CHECK_TARGET_MS} ms | "
        f"{'yes' if p95 <= CHECK_TARGET_MS else '**no**'} |",
        f"| full scan ({result.customers:,} customers, {result.pairs:,} pairs found) | {scan_seconds:.0f} s | "
        f"{SCAN_TARGET_S} s | {'yes' if scan_seconds <= SCAN_TARGET_S else '**no**'} |",
    ]
    write_section("Duplicate detection speed", lines, args.results)


if __name__ == "__main__":
    main()
