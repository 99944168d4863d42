"""PostgreSQL at scale: every search kind, the list page, the customer page and the analytics refresh, on one
primary. `python bench/pg_scale.py [--customers 1000000] [--lines 10000000]`.

Builds (once per size) a PostgreSQL database `cim_scale_N` on 127.0.0.1 with N demo customers (`cim demo`) and M
order lines imported with `cim import orders` (COPY), then ANALYZE, as the worker's daily job does. Times, for
queries drawn from the data: each search kind (the selector's first page of 25 and its capped count, as
bench/search_bench.py does on SQLite), the list page, a customer page of a customer with orders (through the
Django test client, so middleware, the template and every query are in it), and the hourly analytics refresh
(order totals, RFM, lifecycle stages, five segments): once from nothing and once with nothing changed. Writes its
section of bench/RESULTS.md. The targets are issue 9's at 10M customers and 100M order lines.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from history_bench import time_import, write_orders  # noqa: E402
from results import RESULTS, write_section  # noqa: E402
from search_bench import logged_in_client, machine, samples, stats, timed  # noqa: E402
from segments_bench import define_segments  # noqa: E402

SEARCH_TARGET, LIST_TARGET, CUSTOMER_TARGET, REFRESH_TARGET = 50, 150, 200, 300
SERVER = "postgres://postgres@127.0.0.1:5432"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="queries per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


def setup_django(data_dir: Path, database: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            server.execute(f'CREATE DATABASE "{database}"')
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CIM_DATA_DIR"] = str(data_dir)  # the search key lives here: keep it with the database
    os.environ["CIM_DATABASE_URL"] = f"{SERVER}/{database}"
    os.environ["CIM_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)  # the access log line of every request


def build(data_dir: Path, customers: int, lines: int, seed: int) -> dict:
    """Customers and order lines, reused when a finished build of the same size is there."""
    marker = data_dir / "built.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if (built["customers"], built["lines"]) == (customers, lines):
            return built
        raise SystemExit(f"{marker} is of another size: drop the database and the folder first")
    from django.core.management import call_command

    from cim.core.tasks import database_statistics_refresh
    from cim.customers.models import Customer

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("demo", customers=customers, seed=seed, verbosity=0)
    demo_seconds = time.perf_counter() - started
    print(f"{customers:,} demo customers in {demo_seconds:.0f} s", flush=True)
    path = data_dir / f"orders-{lines}.csv"
    write_orders(path, list(Customer.objects.values_list("number", flat=True)), lines, seed)
    import_seconds, counts = time_import(path)
    path.unlink()
    print(f"{counts['lines']:,} order lines in {import_seconds:.0f} s", flush=True)
    database_statistics_refresh()
    built = {
        "customers": customers,
        "lines": lines,
        "orders": counts["created"],
        "demo_seconds": demo_seconds,
        "import_seconds": import_seconds,
    }
    marker.write_text(json.dumps(built))
    return built


def database_facts() -> tuple[str, float]:
    """(the server's version and memory settings, the database's size in GiB)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), pg_database_size(current_database())"
        )
        version, shared_buffers, work_mem, size = cursor.fetchone()
    return f"PostgreSQL {version.split()[0]} (shared_buffers {shared_buffers}, work_mem {work_mem})", size / 1024**3


def time_refresh() -> tuple[float, float]:
    """The hourly analytics refresh from nothing (every total, score, stage and membership new), then again with
    nothing changed."""
    from django.db import connection

    from cim.activities.models import Order
    from cim.analytics.models import CustomerScore, OrderTotalsDue
    from cim.segments.pipeline import customer_analytics_refresh

    CustomerScore.objects.all().delete()
    with connection.cursor() as cursor:  # every buyer's totals to be summed
        cursor.execute(
            f"INSERT INTO {OrderTotalsDue._meta.db_table} (customer_id, due_at) "
            f"SELECT DISTINCT customer_id, %s FROM {Order._meta.db_table} ON CONFLICT DO NOTHING",
            [datetime(1970, 1, 1, tzinfo=UTC)],
        )
    define_segments()
    started = time.perf_counter()
    customer_analytics_refresh()
    cold = time.perf_counter() - started
    started = time.perf_counter()
    customer_analytics_refresh()
    return cold, time.perf_counter() - started


def main() -> None:
    args = parse_args()
    data_dir = BENCH / "data" / f"pg-{args.customers}"
    setup_django(data_dir, f"cim_scale_{args.customers}")
    built = build(data_dir, args.customers, args.lines, args.seed)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a reused database gets the migrations written since it was built

    from cim.accounts.models import User
    from cim.accounts.roles import Role
    from cim.accounts.services import user_create
    from cim.activities.models import Order
    from cim.customers.filters import CustomerFilter
    from cim.customers.selectors import customer_count, customer_list

    admin = User.objects.filter(username="bench-admin").first()
    if admin is None:
        admin, _ = user_create(username="bench-admin", role=Role.ADMINISTRATOR, password="bench-Password-1")
    client = logged_in_client(admin)
    queries = samples(args.repeat, args.seed)
    rng = random.Random(args.seed)
    top = Order.objects.order_by("-pk").values_list("pk", flat=True).first()
    buyers = list(
        Order.objects.filter(pk__in=rng.sample(range(1, top + 1), args.repeat)).values_list(
            "customer__number", flat=True
        )
    )

    def search(q: str) -> None:
        found = customer_list(user=admin, filters=CustomerFilter(q=q))
        list(found[:25])
        customer_count(found)

    def get(path: str):
        def action(value) -> None:
            response = client.get(path.format(value))
            if response.status_code != 200:
                raise SystemExit(f"GET {path.format(value)} answered {response.status_code}")

        return action

    measures = [(f"search: {kind}", search, values, SEARCH_TARGET) for kind, values in queries.items()] + [
        ("list page: GET / (page 1)", get("/"), [None] * args.repeat, LIST_TARGET),
        ("list page: GET /?q=<2-char name>", get("/?q={}"), queries["full name, 2 chars"], LIST_TARGET),
        ("customer page: GET /customers/<a buyer>/", get("/customers/{}/"), buyers, CUSTOMER_TARGET),
    ]
    rows = []
    for label, action, values, target in measures:
        rows.append((label, values[0] or "", *stats(timed(action, values)), target))
        print(
            f"{label:<48} {str(values[0] or '')[:20]:<20} {rows[-1][2]:8.2f} {rows[-1][3]:8.2f} {target:>5}", flush=True
        )
    cold, quiet = time_refresh()
    print(f"refresh: first {cold:.1f} s, nothing changed {quiet:.1f} s")

    info = machine()
    server, size = database_facts()
    met = lambda value, target: "yes" if value <= target else "**no**"  # noqa: E731
    lines = [
        f"`bench/pg_scale.py --customers {args.customers} --lines {args.lines}`: {info['date']}, {info['cpus']} CPUs "
        f"({info['cpu']}), {info['memory']}, {server} on the same machine, Python {info['python']}. "
        f"{built['customers']:,} demo customers "
        f"(loaded in {built['demo_seconds']:.0f} s) and {built['lines']:,} order lines in {built['orders']:,} "
        f"orders (`cim import orders` in {built['import_seconds']:.0f} s, "
        f"{built['lines'] / built['import_seconds']:,.0f} lines/s); database {size:.1f} GiB. "
        f"{args.repeat} queries per row drawn from the data, after 5 warm-up queries; searches timed around the "
        "selector (first page of 25 and the capped count), pages around the Django test client. The targets are "
        "issue 9's at 10M customers and 100M order lines.",
        "",
        "| measure | example | median ms | p95 ms | target p95 ms at 10M | met here |",
        "|---|---|---:|---:|---:|:---:|",
        *(
            f"| {label} | `{example}` | {median:.2f} | {p95:.2f} | {target} | {met(p95, target)} |"
            for label, example, median, p95, target in rows
        ),
        f"| analytics refresh, from nothing (totals, RFM, lifecycle, 5 segments) | | {cold:.1f} s | | "
        f"{REFRESH_TARGET} s | {met(cold, REFRESH_TARGET)} |",
        f"| analytics refresh, nothing changed | | {quiet:.1f} s | | {REFRESH_TARGET} s | "
        f"{met(quiet, REFRESH_TARGET)} |",
    ]
    write_section("PostgreSQL at scale: search, pages and refresh", lines, args.results)


if __name__ == "__main__":
    main()
