"""Date triggers at scale: `python bench/care_bench.py [--customers 1000000] [--database-url postgres://...]`.

Builds (once per size and database) N customers set-based — plain tuples through cim.core.bulk, birthdays
encrypted and their month-day keys derived exactly as every write path does — into bench/data/care-N (SQLite) or
the PostgreSQL database given. Then times what the daily care job and the rules' date triggers ask each day:
today's birthdays, today's lunar birthdays, customer anniversaries, and a lunar festival (every eligible customer:
the ids of a million rows); and the whole year's birthdays, day by day. Target: today's birthdays and lunar
festivals over 1,000,000 customers in ≤ 10 s. Writes its section of bench/RESULTS.md.
"""

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402

TARGET_SECONDS = 10
BATCH = 20_000
NAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; SQLite in bench/data by default")
    parser.add_argument("--on", type=date.fromisoformat, default=None, help="the day to ask about (today)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


def setup_django(data_dir: Path, database_url: str) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["CIM_DATABASE_URL"] = database_url
    else:
        os.environ.pop("CIM_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def rows(count: int, seed: int):
    """Customer rows in the model's column order: 9 in 10 with a birthday, 1 in 5 keeping the lunar one too, 1 in
    20 archived, joined over six years."""
    from types import SimpleNamespace

    from cim.core.bulk import value_adapter
    from cim.customers.models import Customer

    fields = [f for f in Customer._meta.concrete_fields if not f.primary_key]
    adapters = [value_adapter(f) for f in fields]
    derived = [f for f in fields if hasattr(f, "source")]
    defaults = {f.attname: f.get_default() for f in fields}
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for n in range(count):
        name = rng.choice(NAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        values = {
            **defaults,
            "number": f"B{n:09d}",
            "display_name": name,
            "match_name": name,
            "birthday": date(1950, 1, 1) + timedelta(days=rng.randrange(58 * 365)) if rng.random() < 0.9 else None,
            "keeps_lunar_birthday": rng.random() < 0.2,
            "status": "archived" if rng.random() < 0.05 else "active",
            "created_at": now - timedelta(seconds=rng.randrange(6 * 365 * 86400)),
            "updated_at": now,
        }
        plain = SimpleNamespace(**values)
        for field in derived:
            values[field.attname] = field.pre_save(plain, True)
        yield tuple(adapt(values[f.attname]) for f, adapt in zip(fields, adapters, strict=True))


def build(data_dir: Path, database_url: str, customers: int, seed: int) -> dict:
    """The customers, reused when a finished build of the same size is there."""
    marker = data_dir / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("customers") == customers:
        setup_django(data_dir, database_url)
        return json.loads(marker.read_text())
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a half-finished build
    data_dir.mkdir(parents=True)
    setup_django(data_dir, database_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from cim.core.bulk import insert_rows
    from cim.customers.models import Customer

    call_command("migrate", verbosity=0)
    if database_url:
        call_command("flush", interactive=False, verbosity=0)  # a half-finished build's rows
    names = [f.attname for f in Customer._meta.concrete_fields if not f.primary_key]
    started = time.perf_counter()
    generated = rows(customers, seed)
    for start in range(0, customers, BATCH):
        batch = [next(generated) for _ in range(min(BATCH, customers - start))]
        with transaction.atomic():
            insert_rows(Customer, names, batch)
        print(f"  {start + len(batch):,} customers", end="\r", flush=True)
    print()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customer")
    built = {"customers": customers, "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(built))
    return built


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    args = parse_args()
    engine = "postgresql" if args.database_url else "sqlite"
    data_dir = BENCH / "data" / f"care-{engine}-{args.customers}"
    built = build(data_dir, args.database_url, args.customers, args.seed)
    from django.db import connection

    from cim.automation.calendar import (
        DateKind,
        Festival,
        business_today,
        customers_on_date,
        festival_date,
        lunar_date,
    )

    on = args.on or business_today()
    spring = festival_date(Festival.SPRING_FESTIVAL, on.year)
    mid_autumn = festival_date(Festival.MID_AUTUMN_FESTIVAL, on.year)

    def ids(kind, day, **extra):
        return lambda: list(customers_on_date(kind=kind, on=day, **extra).values_list("pk", flat=True))

    measures = [
        ("today's birthdays", ids(DateKind.BIRTHDAY, on)),
        ("today's lunar birthdays (customers who keep them)", ids(DateKind.LUNAR_BIRTHDAY, on)),
        ("birthdays in 3 days (offset −3)", ids(DateKind.BIRTHDAY, on, offset_days=-3)),
        ("customer anniversaries today", ids(DateKind.ANNIVERSARY, on)),
        (f"Spring Festival ({spring}): every eligible customer", ids(Festival.SPRING_FESTIVAL, spring)),
        (f"Mid-Autumn Festival ({mid_autumn}): every eligible customer", ids(Festival.MID_AUTUMN_FESTIVAL, mid_autumn)),
        (f"lunar birthdays on Spring Festival ({spring})", ids(DateKind.LUNAR_BIRTHDAY, spring)),
    ]
    lines_out = []
    today_total = 0.0
    for label, action in measures:
        seconds, found = timed(action)
        if label.startswith(("today's", "Spring Festival")):
            today_total += seconds
        lines_out.append(f"| {label} | {len(found):,} | {seconds * 1000:,.0f} ms |")
        print(lines_out[-1])
    year_start = date(on.year, 1, 1)
    year_seconds, counts = timed(
        lambda: [
            customers_on_date(kind=DateKind.BIRTHDAY, on=year_start + timedelta(days=d)).count() for d in range(365)
        ]
    )
    lines_out.append(
        f"| every day of {on.year}: birthday count (365 queries) | {sum(counts):,} | "
        f"{year_seconds * 1000:,.0f} ms ({year_seconds / 365 * 1000:.1f} ms a day) |"
    )
    print(lines_out[-1])
    derive_seconds, _ = timed(lambda: [lunar_date(date(1950, 1, 1) + timedelta(days=d)) for d in range(20_000)])
    verdict = "met" if today_total <= TARGET_SECONDS else "NOT met"
    load = os.getloadavg()[0]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        f"Care: date triggers over {args.customers:,} customers ({engine})",
        [
            f"`bench/care_bench.py --customers {args.customers}{' --database-url …' if args.database_url else ''}`: "
            f"{stamp}, {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
            f"{connection.vendor}; load average {load:.1f} (the machine is shared with other engineers' work). "
            f"Built set-based in {built['seconds']} s (birthdays encrypted, month-day keys derived per row). "
            f"Asked about {on}.",
            "",
            f"**Today's birthdays + lunar birthdays + a lunar festival's customers: {today_total:.2f} s** "
            f"(target ≤ {TARGET_SECONDS} s: {verdict}).",
            "",
            "| question | customers | time |",
            "|---|---:|---:|",
            *lines_out,
            f"| lunar date of 20,000 distinct days (first time, uncached) | — | {derive_seconds * 1000:,.0f} ms |",
        ],
        args.results,
    )


if __name__ == "__main__":
    main()
