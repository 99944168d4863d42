"""Consent checks and erasure at scale: `python bench/privacy_bench.py [--customers N]`.

Builds (once per size) a database of N demo customers in bench/data/privacy-N, gives half of them a marketing consent
and a sixth of those a later withdrawal (raw inserts), then times `consent_holds` over every customer (what a
campaign calls before sending), `consent_required` over the customers who hold it, one `customer_erase`, and the
dry-run count of a retention rule over all customers. Writes its section of bench/RESULTS.md.
"""

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import write_section  # noqa: E402
from search_bench import build, setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data_dir = BENCH / "data" / f"privacy-{args.customers}"
    build(data_dir, args.customers, args.seed)
    setup_django(data_dir)

    from django.db import connection

    from cim.accounts.models import User
    from cim.customers.models import Customer
    from cim.privacy.erasure import customer_erase
    from cim.privacy.models import Consent, RetentionRule
    from cim.privacy.retention import retention_rule_count
    from cim.privacy.selectors import consent_holds
    from cim.privacy.services import consent_required, notice_sha256

    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    text = "我同意接收营销信息"
    if not Consent.objects.exists():
        start = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [(pk, start) for pk in ids[::2]] + [(pk, start + timedelta(days=30)) for pk in ids[::12]]
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO privacy_consent (customer_id, purpose, text_version, text, text_sha256, language, "
                "granted, channel, user_agent, at) VALUES (%s, 'marketing', 'v1', %s, %s, 'zh', %s, '', '', %s)",
                [(pk, text, notice_sha256(text), at == start, at.isoformat()) for pk, at in rows],
            )
    consents = Consent.objects.count()

    started = time.perf_counter()
    held = consent_holds(ids, "marketing")
    holds_s = time.perf_counter() - started
    started = time.perf_counter()
    consent_required(customer_ids=held, purpose="marketing")
    required_s = time.perf_counter() - started

    admin = User.objects.filter(role="administrator").first() or User.objects.create(
        username="bench", role="administrator"
    )
    victim = Customer.objects.filter(merged_into__isnull=True).order_by("-pk").first()
    started = time.perf_counter()
    customer_erase(customer=victim, actor=admin, reason="bench")
    erase_s = time.perf_counter() - started

    rule = RetentionRule(name="bench", action=RetentionRule.Action.ANONYMISE_INACTIVE, days=1)
    started = time.perf_counter()
    inactive = retention_rule_count(rule=rule, now=datetime.now(UTC) + timedelta(days=3650))
    count_s = time.perf_counter() - started

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"`bench/privacy_bench.py --customers {args.customers}`: SQLite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average at the end {load} "
        "(other work on the machine inflates the times).",
        "",
        "| measure | rows | seconds |",
        "|---|---:|---:|",
        f"| consent_holds(every customer, marketing) → {len(held):,} hold it | {len(ids):,} customers, "
        f"{consents:,} ledger rows | {holds_s:.2f} |",
        f"| consent_required(the {len(held):,} who hold it) | {len(held):,} | {required_s:.2f} |",
        f"| customer_erase (one customer, FTS5 optimise included) | 1 | {erase_s:.2f} |",
        f"| retention dry run: inactive customers | {inactive:,} | {count_s:.2f} |",
    ]
    write_section("Privacy: consent checks and erasure", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
