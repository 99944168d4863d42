"""Disk per customer and per order line on PostgreSQL, and what that makes at 10M and 100M customers:
`python bench/pg_sizing.py`.

Builds a fresh PostgreSQL database of N demo customers (`cim demo`), imports M order lines for them
(`cim import orders`), runs ANALYZE, then reads the size of every table with its indexes, TOAST and partitions.
Tables are grouped by what they grow with; the bytes per customer and per order line measured here are multiplied
out for docs/deploy.md's sizing table. Writes its section of bench/RESULTS.md.
"""

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from history_bench import time_import, write_orders  # noqa: E402
from ingest_bench import BATCH, identify, stream  # noqa: E402
from results import RESULTS, write_section  # noqa: E402

GB = 1024**3
# Tables that grow with order lines; the audit log and the history are reported on their own; the rest grow with
# customers (contact points, search tokens, tags, scores, segment members…).
ORDER_TABLES = {"activities_order", "activities_orderline", "activities_refund"}
SEPARATE = {"audit_auditevent", "audit_fieldchange", "activities_interaction", "activities_behaviourevent"}
SIZES = ((10_000_000, 100_000_000), (100_000_000, 1_000_000_000))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000, help="tracking calls ingested (analytics.js-like)")
    parser.add_argument("--database", default="cim_sizing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


def setup(database: str, data_dir: Path) -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        CIM_DATA_DIR=str(data_dir),
        CIM_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        DJANGO_SETTINGS_MODULE="cim.config.settings",
    )
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def events_load(events: int, seed: int) -> None:
    """`events` track and page calls of 1,000 identified visitors, through the ingestion service."""
    from cim.activities.schemas import TrackingMessage
    from cim.activities.services import events_ingest
    from cim.ingest.sources import event_source_create

    source, _key = event_source_create(name="sizing", actor=None)
    known = [TrackingMessage.model_validate(identify(u, u, "setup")) for u in range(1000)]
    batches = [known[i : i + BATCH] for i in range(0, len(known), BATCH)]
    batches += [[TrackingMessage.model_validate(e) for e in b] for b in stream("known", events, seed, "size", 0)]
    for batch in batches:
        events_ingest(source=source, messages=batch)


def table_sizes() -> dict[str, tuple[int, int, int]]:
    """{table: (rows, bytes with indexes and TOAST, bytes of its indexes)} of every table, partitions summed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT c.relname, sum(pg_total_relation_size(t.relid)), sum(pg_indexes_size(t.relid)) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (SELECT c.oid AS relid UNION "
            "SELECT relid FROM pg_partition_tree(c.oid)) t WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'p') AND NOT c.relispartition GROUP BY c.relname"
        )
        sizes = {}
        for table, size, indexes in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            sizes[table] = (cursor.fetchone()[0], int(size), int(indexes))
    return sizes


def main() -> None:
    args = parse_args()
    data_dir = BENCH / "data" / f"pg-sizing-{args.customers}"
    setup(args.database, data_dir)
    from django.core.management import call_command

    from cim.customers.models import Customer

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("demo", customers=args.customers, seed=args.seed, json=True, stdout=quiet)
    path = data_dir / f"orders-{args.lines}.csv"
    if not path.exists():
        write_orders(path, list(Customer.objects.values_list("number", flat=True)), args.lines, args.seed)
    elapsed, counts = time_import(path)
    print(f"import: {elapsed:.1f} s, {counts}", flush=True)
    events_load(args.events, args.seed)
    sizes = table_sizes()
    customers = sizes["customers_customer"][0]  # the demo's and the visitors identified by the events

    customer_tables = set(sizes) - ORDER_TABLES - SEPARATE

    def total(tables, column: int = 1) -> int:
        return sum(sizes[t][column] for t in tables)

    per_customer, per_line = total(customer_tables) / customers, total(ORDER_TABLES) / counts["lines"]
    index_per_customer = total(customer_tables, 2) / customers
    index_per_line = total(ORDER_TABLES, 2) / counts["lines"]
    lines = [
        f"{platform.machine()}, PostgreSQL 15, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {customers:,} customers "
        f"({args.customers:,} from `cim demo`, the rest identified by events), {counts['lines']:,} order lines in "
        f"{counts['created']:,} orders (`cim import orders`), {args.events:,} tracking calls (`events_ingest`); "
        "after ANALYZE. Sizes include indexes and TOAST, and every partition.",
        "",
        "| grows with | measured | of which indexes | per row |",
        "|---|---:|---:|---:|",
        f"| customers: every table not listed below (contact points, addresses, search tokens, tags, scores…) | "
        f"{total(customer_tables) / 2**20:,.0f} MB | {total(customer_tables, 2) / 2**20:,.0f} MB | "
        f"{per_customer:,.0f} B per customer |",
        f"| order lines: {', '.join(sorted(ORDER_TABLES))} | {total(ORDER_TABLES) / 2**20:,.0f} MB | "
        f"{total(ORDER_TABLES, 2) / 2**20:,.0f} MB | {per_line:,.0f} B per line |",
    ]
    for table in sorted(SEPARATE):
        rows, size, indexes = sizes[table]
        each = f"{size / rows:,.0f} B per row" if rows else "—"
        lines.append(f"| {table}: {rows:,} rows | {size / 2**20:,.1f} MB | {indexes / 2**20:,.1f} MB | {each} |")
    lines += ["", "Multiplied out (customers and order lines; history and audit log come on top, by volume):", ""]
    lines += ["| customers | order lines | disk | of which indexes |", "|---:|---:|---:|---:|"]
    for planned, order_lines in SIZES:
        disk = (planned * per_customer + order_lines * per_line) / GB
        indexes = (planned * index_per_customer + order_lines * index_per_line) / GB
        lines.append(f"| {planned:,} | {order_lines:,} | {disk:,.0f} GB | {indexes:,.0f} GB |")
    print("\n".join(lines))
    write_section("PostgreSQL sizing", lines, args.results)


if __name__ == "__main__":
    main()
