"""Order import rate and the customer page with a long history: `python bench/history_bench.py`.

Builds (once per size) a SQLite database of N demo customers in bench/data/history-N, writes a CSV of order
lines for random customers (one row per line, rows of an order together, as shops export them), imports it with
`cim import orders` (the import service), and reports lines per second beside a raw `executemany` of the same
lines into the same tables. Then gives one customer 5,000 timeline entries and times the customer page (profile
and the first page of the timeline) through Django's test client. Writes its section of bench/RESULTS.md.
"""

import argparse
import csv
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402
from search_bench import build, logged_in_client, setup_django  # noqa: E402

IMPORT_TARGET, PAGE_TARGET = 100_000, 150
SKUS = [(f"SKU-{i:04d}", f"商品{i}", round(random.Random(i).uniform(5, 500), 2)) for i in range(500)]
STATUSES = ["交易成功"] * 17 + ["已退款", "已取消", "部分退款"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--entries", type=int, default=5000, help="timeline entries of the customer timed")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--page-only", action="store_true", help="keep the orders of the last run and its import figures; time the page"
    )
    return parser.parse_args()


def write_orders(path: Path, numbers: list[str], lines: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2021, 1, 1)
    written = order = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["订单号", "客户编号", "下单时间", "订单状态", "商品编码", "商品名称", "数量", "单价", "退款金额"])
        while written < lines:
            order += 1
            customer = rng.choice(numbers)
            at = (start + timedelta(seconds=rng.randrange(5 * 365 * 86400))).strftime("%Y-%m-%d %H:%M:%S")
            status = rng.choice(STATUSES)
            count = min(rng.choice((1, 1, 2, 3, 4, 5)), lines - written)
            for _ in range(count):
                sku, name, price = rng.choice(SKUS)
                refund = f"{price / 2:.2f}" if status == "部分退款" else ""
                out.writerow([f"SO{order:09d}", customer, at, status, sku, name, rng.randint(1, 3), price, refund])
            written += count


def administrator():
    from cim.accounts.models import User
    from cim.accounts.services import user_create

    found = User.objects.filter(role="administrator", is_active=True).first()
    return found or user_create(username="bench", role="administrator", password="Bench-password-42")[0]


def time_import(path: Path) -> tuple[float, dict]:
    from cim.ingest.services import import_job_create, import_run

    actor = administrator()
    started = time.perf_counter()
    job = import_job_create(path=path, filename=path.name, actor=actor, kind="orders", source="bench")
    counts = import_run(job=job, actor=actor)
    return time.perf_counter() - started, vars(counts)


def time_raw(path: Path) -> float:
    """The same lines inserted with nothing but executemany: orders first, then lines (the engine's limit)."""
    from django.db import connection, transaction

    with path.open(encoding="utf-8") as handle, transaction.atomic(), connection.cursor() as cursor:
        rows = csv.reader(handle)
        next(rows)
        ids = dict(connection.cursor().execute("SELECT number, id FROM customers_customer").fetchall())
        started = time.perf_counter()
        orders, lines, last = [], [], None
        for number, customer, at, _status, sku, name, quantity, price, _refund in rows:
            if number != last:
                orders.append((ids[customer], "raw" + number, "raw", "paid", "", "", "CNY", at, 0, 0, 0, 0, 0, at, at))
                last = number
            lines.append((len(orders), sku, name, quantity, price, 0, price))
        cursor.executemany(
            "INSERT INTO activities_order (customer_id, number, system, status, channel, store, currency, ordered_at,"
            " lines_amount, discount_amount, total_amount, refunded_amount, net_amount, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)".replace("?", "%s"),
            orders,
        )
        first = cursor.execute("SELECT min(id) FROM activities_order WHERE system = 'raw'").fetchone()[0]
        cursor.executemany(
            "INSERT INTO activities_orderline (order_id, sku, name, quantity, unit_price, discount, amount)"
            f" VALUES (%s + {first - 1}, %s, %s, %s, %s, %s, %s)",
            lines,
        )
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def heavy_customer(entries: int) -> str:
    """A customer with `entries` timeline entries: half orders, half interactions, over five years."""
    from cim.activities.models import Interaction, Order, OrderLine
    from cim.customers.models import Customer

    customer = Customer.objects.order_by("pk").first()
    # Again from scratch when run again (--page-only).
    Order.objects.filter(customer=customer, number__startswith="HEAVY").delete()
    Interaction.objects.filter(customer=customer).delete()
    now = datetime.now(UTC)
    half = entries // 2
    orders = Order.objects.bulk_create(
        Order(
            customer=customer,
            number=f"HEAVY{i}",
            system="bench",
            ordered_at=now - timedelta(hours=7 * i),
            total_amount=100,
            net_amount=100,
            lines_amount=100,
        )
        for i in range(half)
    )
    OrderLine.objects.bulk_create(OrderLine(order=order, name="茶叶", unit_price=100, amount=100) for order in orders)
    Interaction.objects.bulk_create(
        Interaction(customer=customer, kind="call", subject=f"回访 {i}", occurred_at=now - timedelta(hours=5 * i))
        for i in range(entries - half)
    )
    return customer.number


def time_page(number: str, repeat: int) -> tuple[list[float], list[float]]:
    client = logged_in_client(administrator())
    url = f"/customers/{number}/"
    timeline = f"/activities/customers/{number}/timeline/"
    for _ in range(5):
        assert client.get(url).status_code == 200
    page, more = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        page.append((time.perf_counter() - started) * 1000)
        cursor = response.content.decode().split("?before=")[1].split("&")[0].split('"')[0]
        started = time.perf_counter()
        client.get(f"{timeline}?before={cursor}", HTTP_HX_REQUEST="true")
        more.append((time.perf_counter() - started) * 1000)
    return page, more


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    args = parse_args()
    data_dir = BENCH / "data" / f"history-{args.customers}"
    build(data_dir, args.customers, args.seed)
    setup_django(data_dir)
    from cim.activities.models import Order
    from cim.customers.models import Customer

    figures = data_dir / f"import-{args.lines}.json"
    if args.page_only:
        raw, elapsed, counts = json.loads(figures.read_text())
    else:
        Order.objects.all().delete()
        path = data_dir / f"orders-{args.lines}.csv"
        if not path.exists():
            print(f"writing {args.lines:,} order lines…", flush=True)
            write_orders(path, list(Customer.objects.values_list("number", flat=True)), args.lines, args.seed)
        raw = time_raw(path)
        print(f"raw executemany: {raw:.1f} s", flush=True)
        elapsed, counts = time_import(path)
        print(f"import: {elapsed:.1f} s, {counts}", flush=True)
        figures.write_text(json.dumps([raw, elapsed, counts]))
    number = heavy_customer(args.entries)
    page, more = time_page(number, args.repeat)
    rate = args.lines / elapsed
    lines = [
        f"{platform.processor() or platform.machine()}, {platform.python_version()}, SQLite; "
        f"{datetime.now(UTC):%Y-%m-%d}; {args.customers:,} customers, {counts['created']:,} orders of "
        f"{counts['lines']:,} lines.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| `cim import orders`, {args.lines:,} lines (CSV, matched by customer number) | {elapsed:.1f} s, "
        f"{rate:,.0f} lines/s | ≥ {IMPORT_TARGET:,} lines/s |",
        f"| same lines, raw `executemany` into the same tables (the engine's limit) | {raw:.1f} s, "
        f"{args.lines / raw:,.0f} lines/s | |",
        f"| customer page (profile + first timeline page), {args.entries:,} entries, p95 | {p95(page):.1f} ms | "
        f"≤ {PAGE_TARGET} ms |",
        f"| next timeline page (htmx), p95 | {p95(more):.1f} ms | |",
    ]
    print("\n".join(lines))
    write_section("Customer history: order import and customer page", lines, args.results)


if __name__ == "__main__":
    main()
