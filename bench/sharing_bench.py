"""The customer list of a team that receives shares: `make bench`, or `python bench/sharing_bench.py --customers N`.

A service agent's team is given customers one by one and a static list of many members; the first page of 25
and the capped count of their list (the selector the page, the export and the API share) are timed with the
shares and, for comparison, for a colleague of the same role in a team that receives none. Also the page of
only the shared customers (`?shared=1`) and the list page itself. Prints a table and writes bench/RESULTS.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402
from search_bench import build, machine, setup_django, stats  # noqa: E402

PAGE = 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--shared", type=int, default=1000, help="customers shared one by one (default 1,000)")
    parser.add_argument("--members", type=int, default=50_000, help="members of the shared list (default 50,000)")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


def prepare(shared: int, members: int):
    """Two teams of service agents, the shares of one of them (made once per database)."""
    from django.utils import timezone

    from cim.accounts.models import Team, User
    from cim.accounts.services import user_create
    from cim.customers.models import Customer, Share
    from cim.segments.models import Segment, SegmentMember

    receiving, _ = Team.objects.get_or_create(name="bench-receiving")
    other, _ = Team.objects.get_or_create(name="bench-other")
    users = {}
    for name, team in (("bench-recipient", receiving), ("bench-plain", other)):
        users[name] = (
            User.objects.filter(username=name).first()
            or user_create(username=name, role="service", password="Correct-Horse-42", team=team)[0]
        )
    admin = User.objects.filter(role="administrator").first()
    if not Share.objects.filter(team=receiving).exists():
        ids = list(Customer.objects.order_by("?").values_list("pk", flat=True)[: shared + members])
        until = timezone.now() + timezone.timedelta(days=30)
        Share.objects.bulk_create(
            Share(customer_id=pk, team=receiving, access="read", reason="bench", expires_at=until, shared_by=admin)
            for pk in ids[:shared]
        )
        segment = Segment.objects.create(name="bench shared list", kind=Segment.Kind.STATIC, size=members)
        now = timezone.now()
        SegmentMember.objects.bulk_create(
            (SegmentMember(segment=segment, customer_id=pk, added_at=now) for pk in ids[shared:]), batch_size=5000
        )
        Share.objects.create(segment=segment, team=receiving, reason="bench", expires_at=until, shared_by=admin)
    return users


def main() -> None:
    args = parse_args()
    data_dir = (BENCH / "data" / f"sharing-{args.customers}").resolve()
    built = build(data_dir, args.customers, args.seed)
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.test import Client

    from cim.customers.filters import CustomerFilter
    from cim.customers.selectors import customer_count, customer_list

    users = prepare(args.shared, args.members)
    print(f"database: {data_dir} ({built['customers']:,} customers)")

    def selector(user, **filters):
        def run(_):
            queryset = customer_list(user=user, filters=CustomerFilter(**filters))
            list(queryset[:PAGE])
            customer_count(queryset)

        return run

    def page(user, url):
        client = Client()
        client.force_login(user)
        return lambda _: client.get(url)

    recipient, plain = users["bench-recipient"], users["bench-plain"]
    cases = [
        ("list: service agent with shares", selector(recipient)),
        ("list: service agent without shares", selector(plain)),
        ("list: only the shared customers (?shared=1)", selector(recipient, shared=True)),
        ("page: GET / with shares", page(recipient, "/")),
        ("page: GET /?shared=1", page(recipient, "/?shared=1")),
    ]
    rows = []
    for name, action in cases:
        for _ in range(5):
            action(None)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            action(None)
            times.append((time.perf_counter() - started) * 1000)
        median, p95 = stats(times)
        rows.append((name, median, p95))
        print(f"{name:<48} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    plan_sql = str(customer_list(user=recipient, filters=CustomerFilter())[:PAGE].query)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + plan_sql)
        plan = [row[-1] for row in cursor.fetchall()]
    info = machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "`bench/sharing_bench.py`: the first page of 25 plus the count capped at 100 (`customer_list`, as the list "
        "page, exports and the API read it) for a service agent whose team receives "
        f"{args.shared:,} customers shared one by one and a static list of {args.members:,} members, against a "
        f"colleague of the same role whose team receives none; {args.repeat} runs each after 5 warm-up runs.",
        "",
        f"- customers: {built['customers']:,}; SQLite {info['sqlite']}, Python {info['python']}",
        f"- machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']} memory, shared with other engineers' "
        f"work while measured; run on {info['date']}; load average at the end {load}",
        "",
        "| measure | median ms | p95 ms |",
        "|---|---:|---:|",
        *(f"| {name} | {median:.2f} | {p95:.2f} |" for name, median, p95 in rows),
        "",
        "SQLite's plan of the page query with shares (the shares are subqueries searched through their indexes):",
        "",
        "```",
        *plan,
        "```",
    ]
    write_section("Sharing: a team's customer list with shares", lines, args.results)


if __name__ == "__main__":
    main()
