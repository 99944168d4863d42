"""Search and list latency at scale: `make bench`, or `python bench/search_bench.py --customers N`.

Builds (once per N) a SQLite database of N demo customers in bench/data/, then times, for many queries drawn
from the data, the server-side work of each search kind (the selector: first page of 25 plus the count),
the list page, the list endpoint and read-by-number. Prints a table and writes bench/RESULTS.md.
"""

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402

PAGE = 25
# (name, target p95 in ms): DESIGN targets at 1M customers on SQLite.
SEARCH_TARGET, PAGE_TARGET, READ_TARGET = 20, 100, 10
EXACT_SAMPLES = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="default: bench/data/customers-N")
    parser.add_argument("--repeat", type=int, default=200, help="queries per kind (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--explain", action="store_true", help="also print the query plan of one query per kind")
    return parser.parse_args()


def logged_in_client(user):
    """A test client signed in as `user`. An administrator first gets the TOTP authenticator CIM requires of one:
    without it every page redirects to its setup and the API answers 403."""
    from django.test import Client

    from cim.accounts.adapter import has_totp, mfa_required
    from cim.accounts.testing import totp_activate

    if mfa_required(user) and not has_totp(user):
        totp_activate(user)
    client = Client()
    client.force_login(user)
    return client


def setup_django(data_dir: Path) -> None:
    """Point Django at the bench database; once per process, and only after the data dir is final
    (settings read the search key from it, and keys hashed under another key would not be found)."""
    if "CIM_BENCH_READY" in os.environ:
        return
    os.environ["CIM_BENCH_READY"] = "1"
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    os.environ.pop("CIM_DATABASE_URL", None)
    # django.test.Client calls itself "testserver".
    os.environ["CIM_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def build(data_dir: Path, customers: int, seed: int) -> dict:
    """The database of `customers` demo customers, reused when a finished build of the same size is there."""
    marker = data_dir / "built.json"
    if marker.exists() and json.loads(marker.read_text()).get("customers") == customers:
        return json.loads(marker.read_text())
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a half-finished build
    data_dir.mkdir(parents=True)
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    out = data_dir / "demo.out"
    with out.open("w") as handle:
        call_command("demo", customers=customers, seed=seed, json=True, stdout=handle)
    marker.write_text(out.read_text().strip().splitlines()[-1])
    return json.loads(marker.read_text())


def timed(action: Callable[[], object], queries: list, warmup: int = 5) -> list[float]:
    for query in queries[:warmup]:
        action(query)
    times = []
    for query in queries:
        started = time.perf_counter()
        action(query)
        times.append((time.perf_counter() - started) * 1000)
    return times


def samples(repeat: int, seed: int) -> dict[str, list[str]]:
    """Realistic queries of each kind, drawn from random customers."""
    from pypinyin import lazy_pinyin

    from cim.customers.models import Customer, Email, Phone

    rng = random.Random(seed)
    top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    ids = rng.sample(range(1, top + 1), min(top, 20 * repeat))
    people = list(
        Customer.objects.filter(pk__in=ids, kind="person", family_name__regex=r"^[\u4e00-\u9fff]")
        .exclude(status="archived")
        .values_list("display_name", "family_name")
    )
    companies = list(Customer.objects.filter(pk__in=ids).exclude(company="").values_list("company", flat=True))
    companies += list(
        Customer.objects.filter(pk__in=ids, kind="organization", uscc__gt="").values_list("display_name", flat=True)
    )
    phones = list(Phone.objects.filter(customer_id__in=ids).values_list("number", "raw"))
    emails = list(Email.objects.filter(customer_id__in=ids).values_list("address", flat=True))
    numbers = list(Customer.objects.filter(pk__in=ids).values_list("number", flat=True))

    def pick(values: list) -> list:
        return [rng.choice(values) for _ in range(repeat)]

    def fragment(name: str) -> str:
        # A brand inside a company name, skipping a leading city: 深圳鑫博腾飞传媒有限公司 → 鑫博腾飞.
        start = rng.randrange(0, max(1, len(name) - 8))
        return name[start : start + rng.choice([2, 3, 4])]

    return {
        "surname, 1 char (张, 王…)": pick([family for _, family in people if len(family) == 1]),
        "full name, 2 chars": pick([name for name, _ in people if len(name) == 2]),
        "full name, 3 chars": pick([name for name, _ in people if len(name) == 3]),
        "full pinyin": ["".join(lazy_pinyin(ch)[0] for ch in name) for name, _ in pick(people)],
        "pinyin initials": ["".join(lazy_pinyin(ch)[0][0] for ch in name) for name, _ in pick(people)],
        "phone, last 4 digits": [number[-4:] for number, _ in pick(phones)],
        "phone, full (as typed)": [raw for _, raw in pick(phones)],
        "email prefix (5 chars)": [address.split("@")[0][:5] for address in pick(emails)],
        "email, full": pick(emails),
        "customer number": pick(numbers),
        "company fragment": [fragment(name) for name in pick(companies)],
    }


def stats(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=100, method="inclusive")[94]


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "sqlite": sqlite3.sqlite_version,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    args = parse_args()
    data_dir = (args.data_dir or BENCH / "data" / f"customers-{args.customers}").resolve()
    started = time.monotonic()
    built = build(data_dir, args.customers, args.seed)
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a reused database gets indexes added since it was built
    print(f"database: {data_dir} ({built['customers']:,} customers, built in {built['seconds']:.0f} s)")

    from django.db import connection
    from django.test import Client

    from cim.accounts.models import User
    from cim.accounts.roles import Role
    from cim.accounts.services import api_token_create, user_create
    from cim.customers.filters import CustomerFilter
    from cim.customers.selectors import COUNT_CAP, customer_count, customer_list

    admin = User.objects.filter(username="bench-admin").first()
    if admin is None:
        admin, _ = user_create(username="bench-admin", role=Role.ADMINISTRATOR, password="bench-Password-1")
    User.objects.filter(pk=admin.pk).update(must_change_password=False)
    admin.refresh_from_db()
    _, token = api_token_create(user=admin, name="bench")
    page_client = logged_in_client(admin)
    api_client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    queries = samples(args.repeat, args.seed)

    def page(q: str) -> None:
        list(customer_list(user=admin, filters=CustomerFilter(q=q))[:PAGE])

    def capped_count(q: str) -> None:
        customer_count(customer_list(user=admin, filters=CustomerFilter(q=q)))

    def exact_count(q: str) -> None:
        customer_list(user=admin, filters=CustomerFilter(q=q)).count()

    def get(client: Client, path: str) -> Callable[[object], None]:
        def action(query) -> None:
            response = client.get(path.format(q=query))
            if response.status_code != 200:
                raise SystemExit(f"GET {path.format(q=query)} answered {response.status_code}")
            response.content  # noqa: B018 - a streaming body would otherwise be timed only in part

        return action

    rows = []
    for kind, values in queries.items():
        page_times, count_times = timed(page, values), timed(capped_count, values)
        total = [a + b for a, b in zip(page_times, count_times, strict=True)]
        # Exact counts of common words take seconds; a few show the point.
        exact = timed(exact_count, values[:EXACT_SAMPLES], warmup=1)
        parts = (stats(page_times)[1], stats(count_times)[1], stats(exact)[1])
        rows.append((f"search: {kind}", values[0], *stats(total), SEARCH_TARGET, parts))
        if args.explain:
            sql, params = customer_list(user=admin, filters=CustomerFilter(q=values[0]))[:PAGE].query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
                print(f"\n{kind} ({values[0]}):\n  " + "\n  ".join(str(r[-1]) for r in cursor.fetchall()))
    unused = [None] * args.repeat
    names = queries["full name, 2 chars"]
    numbers = queries["customer number"]
    for label, client, path, values, target in [
        ("page: GET / (page 1)", page_client, "/", unused, PAGE_TARGET),
        ("page: GET /?value_tier=vip&region=east", page_client, "/?value_tier=vip&region=east", unused, PAGE_TARGET),
        ("page: GET /?q=<2-char name>", page_client, "/?q={q}", names, PAGE_TARGET),
        ("api: GET /api/v1/customers?limit=25", api_client, "/api/v1/customers?limit=25", unused, PAGE_TARGET),
        (
            "api: GET /api/v1/customers?q=<2-char name>",
            api_client,
            "/api/v1/customers?limit=25&q={q}",
            names,
            PAGE_TARGET,
        ),
        ("api: GET /api/v1/customers/{number}", api_client, "/api/v1/customers/{q}", numbers, READ_TARGET),
    ]:
        rows.append((label, values[0] or "", *stats(timed(get(client, path), values)), target, None))

    info = machine()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(length(tokens) - length(replace(tokens, ' ', '')) + 1) FROM search_document")
        tokens = cursor.fetchone()[0] or 0
    size = sum(p.stat().st_size for p in data_dir.glob("cim.sqlite3*")) / 1024**3
    header = (
        f"{'measure':<46} {'example':<22} {'median ms':>9} {'p95 ms':>8} {'target':>7} "
        f"{'page p95':>9} {'count p95':>9} {'exact p95':>9}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for label, example, median, p95, target, parts in rows:
        split = "".join(f" {part:>9.2f}" for part in parts) if parts else " " * 30
        flag = "" if p95 <= target else "  MISSED"
        print(f"{label:<46} {str(example)[:22]:<22} {median:>9.2f} {p95:>8.2f} {target:>7}{split}{flag}")

    lines = [
        "`bench/search_bench.py`: server time measured around the selector calls (the first page "
        f"of {PAGE} rows, then `customer_count` capped at {COUNT_CAP:,}; p95 of their sum) or around the Django test "
        f"client request, {args.repeat} queries per row drawn at random from the data, after 5 warm-up queries. "
        f"`exact count` is an uncapped `COUNT(*)` over the first {EXACT_SAMPLES} queries, for comparison. "
        "Targets are p95 at 1M customers on SQLite.",
        "",
        f"- customers: {built['customers']:,} ({tokens:.1f} search tokens each, database {size:.1f} GiB; "
        f"demo load took {built['seconds']:.0f} s)",
        f"- machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']} memory",
        f"- SQLite {info['sqlite']}, Python {info['python']}; run on {info['date']}; load average at the end "
        f"{load} (other work on the machine inflates the tails)",
        "",
        "| measure | example | median ms | p95 ms | target p95 ms | met | page p95 | count p95 | exact count p95 |",
        "|---|---|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | `{example}` | {median:.2f} | {p95:.2f} | {target} | {'yes' if p95 <= target else '**no**'} | "
        + (" | ".join(f"{part:.2f}" for part in parts) if parts else " |  | ")
        + " |"
        for label, example, median, p95, target, parts in rows
    ]
    write_section("Search, list page and list endpoint", lines, args.results)
    print(f"\nwritten to {args.results} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
