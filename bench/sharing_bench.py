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
    """A service agent in the demo team with the fewest customers, and the shares their team receives (made afresh
    on each run): `shared` customers one by one and a static list of `members` other customers."""
    from django.db.models import Count
    from django.utils import timezone

    from cim.accounts.models import Team, User
    from cim.accounts.services import user_create
    from cim.customers.models import Customer, Share
    from cim.segments.models import Segment, SegmentMember

    team = Team.objects.annotate(n=Count("customers")).filter(n__gt=0).order_by("n").first()
    agent = (
        User.objects.filter(username="bench-agent").first()
        or user_create(username="bench-agent", role="service", password="Correct-Horse-42", team=team)[0]
    )
    User.objects.filter(pk=agent.pk).update(team=team)
    agent.refresh_from_db()
    admin = User.objects.filter(role="administrator").first()
    Share.objects.filter(reason="bench").delete()
    Segment.objects.filter(name="bench shared list").delete()
    outside = Customer.objects.exclude(team=team).order_by("?").values_list("pk", flat=True)[: shared + members]
    ids = list(outside)
    until = timezone.now() + timezone.timedelta(days=30)
    Share.objects.bulk_create(
        Share(customer_id=pk, team=team, reason="bench", expires_at=until, shared_by=admin) for pk in ids[:shared]
    )
    segment = Segment.objects.create(name="bench shared list", kind=Segment.Kind.STATIC, size=members)
    now = timezone.now()
    SegmentMember.objects.bulk_create(
        (SegmentMember(segment=segment, customer_id=pk, added_at=now) for pk in ids[shared:]), batch_size=5000
    )
    Share.objects.create(segment=segment, team=team, reason="bench", expires_at=until, shared_by=admin)
    return agent, team


def timed(action, repeat: int) -> list[float]:
    for _ in range(5):
        action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    args = parse_args()
    data_dir = (BENCH / "data" / f"sharing-{args.customers}").resolve()
    built = build(data_dir, args.customers, args.seed)
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.test import Client
    from django.utils import timezone

    from cim.customers.filters import CustomerFilter
    from cim.customers.models import Share
    from cim.customers.selectors import customer_count, customer_list

    agent, team = prepare(args.shared, args.members)
    print(f"database: {data_dir} ({built['customers']:,} customers); {agent.username} in {team.name}")

    def selector(**filters):
        def run():
            queryset = customer_list(user=agent, filters=CustomerFilter(**filters))
            list(queryset[:PAGE])
            customer_count(queryset)

        return run

    client = Client()
    client.force_login(agent)

    def page(url):
        return lambda: client.get(url)

    # (name, action, whether the bench shares are revoked while it runs: the same agent and list without them)
    cases = [
        ("list: service agent, no shares", selector(), True),
        ("list: the same with the shares", selector(), False),
        ("list: only the shared customers (?shared=1)", selector(shared=True), False),
        ("page: GET / with the shares", page("/"), False),
        ("page: GET /?shared=1", page("/?shared=1"), False),
    ]
    bench_shares = Share.objects.filter(reason="bench")
    rows = []
    for name, action, without_shares in cases:
        if without_shares:
            bench_shares.update(revoked_at=timezone.now())
        try:
            times = timed(action, args.repeat)
        finally:
            bench_shares.update(revoked_at=None)
        median, p95 = stats(times)
        rows.append((name, median, p95))
        print(f"{name:<48} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    plan = customer_list(user=agent, filters=CustomerFilter())[:PAGE].explain().splitlines()
    info = machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "`bench/sharing_bench.py`: the first page of 25 plus the count capped at 100 (`customer_list`, as the list "
        "page, exports and the API read it) for a service agent whose team (the demo team with the fewest "
        f"customers) receives {args.shared:,} customers shared one by one and a static list of {args.members:,} "
        "other members, against the same agent with those shares revoked; the list page itself; "
        f"{args.repeat} runs each after 5 warm-up runs.",
        "",
        f"- customers: {built['customers']:,}; SQLite {info['sqlite']}, Python {info['python']}",
        f"- machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory']} memory, shared with other engineers' "
        f"work while measured; run on {info['date']}; load average at the end {load}",
        "",
        "| measure | median ms | p95 ms |",
        "|---|---:|---:|",
        *(f"| {name} | {median:.2f} | {p95:.2f} |" for name, median, p95 in rows),
        "",
        "Sharing adds two subqueries that SQLite evaluates once per query (`LIST SUBQUERY`, through `share_team_idx` "
        "and the list members' unique index); per row it is a lookup in their result. `?shared=1` reads every "
        "customer shared with the team by rowid and sorts them for the page, so it grows with what is shared, not "
        "with all customers. On PostgreSQL, `core/tests/test_query_plans.py` checks that both lists find their rows "
        "through indexes.",
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
