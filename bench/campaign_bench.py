"""A campaign to 100,000 recipients over SMTP: `python bench/campaign_bench.py`.

Builds (once) a PostgreSQL database `cim_bench_campaign` of demo customers and puts the first N current customers
with an email address, each with marketing consent, on a static list. Starts an aiosmtpd server on loopback in
its own process (it counts messages and discards them). Then measures:

1. the raw SMTP hand-off rate of that server: smtplib sending the same number of pre-rendered messages over one
   connection per sender process, as many senders as the campaign has workers (the ceiling of any sender);
2. the campaign: `campaign_start` + `campaign_advance` (audience resolved set-based, consent, restriction,
   suppressed addresses and caps checked per recipient, one `Message` per recipient queued), then `messages_deliver`
   in W worker processes until every message is handed over (consent checked again at send time, the template
   rendered per recipient, one commit per message before the DATA terminator).

Frequency caps and quiet hours are switched off (the bench runs at any hour and again on the same customers).
Writes its section of bench/RESULTS.md.
"""

import argparse
import multiprocessing
import os
import platform
import smtplib
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402

TARGET = 1000
DATABASE = "cim_bench_campaign"
HEADING = "Campaign to 100,000 recipients over SMTP"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="delivery worker processes (default 2)")
    parser.add_argument("--batch", type=int, default=500, help="messages each worker claims at a time")
    parser.add_argument(
        "--deliver-seconds",
        type=float,
        default=0,
        help="stop delivering after this long and report the rate so far (0: deliver every message)",
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data" / "campaign")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args()


def setup_django(args) -> None:
    os.environ["CIM_DATA_DIR"] = str(args.data_dir)
    os.environ["CIM_DATABASE_URL"] = f"{args.postgres}/{DATABASE}"
    os.environ["CIM_MESSAGE_CAPS"] = ""
    os.environ["CIM_MESSAGE_QUIET_HOURS"] = ""
    os.environ["CIM_TASKS_BACKEND"] = "django_tasks.backends.dummy.DummyBackend"  # the bench runs the jobs itself
    os.environ["CIM_EMAIL_FROM"] = "CIM <campaigns@bench.example>"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    import psycopg

    with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            admin.execute(f"CREATE DATABASE {DATABASE}")
    import django

    django.setup()


def build(args) -> int:
    """The static list of `recipients` customers with an email and marketing consent; its segment id."""
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from cim.customers.demo import demo_load
    from cim.customers.models import Customer
    from cim.privacy.models import Consent
    from cim.privacy.services import notice_sha256
    from cim.segments.models import Segment, SegmentMember
    from cim.segments.services import current_customers

    call_command("migrate", verbosity=0)
    name = f"bench campaign {args.recipients}"
    segment = Segment.objects.filter(name=name).first()
    if segment is not None:
        return segment.pk
    with_email = current_customers().filter(emails__isnull=False).distinct()
    while with_email.count() < args.recipients:
        missing = args.recipients - with_email.count()
        print(f"loading demo customers ({missing:,} more with an email needed)", flush=True)
        demo_load(customers=int(missing * 1.4) + 1000, seed=args.seed + Customer.objects.count())
    ids = list(with_email.order_by("pk").values_list("pk", flat=True)[: args.recipients])
    now = timezone.now()
    text = "同意接收营销邮件"
    have = set(Consent.objects.filter(purpose="marketing", granted=True).values_list("customer_id", flat=True))
    Consent.objects.bulk_create(
        [
            Consent(customer_id=pk, purpose="marketing", text=text, text_sha256=notice_sha256(text), text_version="1",
                    granted=True, at=now)
            for pk in ids
            if pk not in have
        ],
        batch_size=5000,
    )  # fmt: skip
    segment = Segment.objects.create(name=name, kind=Segment.Kind.STATIC, size=len(ids))
    SegmentMember.objects.bulk_create(
        [SegmentMember(segment=segment, customer_id=pk, added_at=now) for pk in ids], batch_size=5000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics for the planner after the bulk inserts
    return segment.pk


# --- The SMTP server, in its own process


class Counter:
    def __init__(self, count):
        self.count = count

    async def handle_DATA(self, server, session, envelope):
        with self.count.get_lock():
            self.count.value += 1
        return "250 Message accepted"


def _serve(port: int, count, ready) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(Counter(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Raw hand-off


def _raw_sender(port: int, n: int) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "campaigns@bench.example"
    message["To"] = "someone@bench.example"
    message["Subject"] = "王芳，双十二特惠"
    message.set_content("亲爱的王芳：\n新品上市，详见 https://shop.example.com/sale\n" * 5)
    data = message.as_bytes()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(n):
            smtp.sendmail("campaigns@bench.example", ["someone@bench.example"], data)


def raw_rate(port: int, count, total: int, senders: int) -> float:
    start_count = count.value
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    procs = [context.Process(target=_raw_sender, args=(port, total // senders)) for _ in range(senders)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    assert count.value - start_count == total // senders * senders
    return total / seconds


# --- The campaign


def _worker(batch: int, deadline: float) -> None:
    from django.db import connections

    connections.close_all()  # never share the parent's connection
    from cim.automation.messaging import messages_deliver

    while not deadline or time.perf_counter() < deadline:
        run = messages_deliver(limit=batch, batch_size=batch)
        if not (run.sent or run.failed or run.suppressed or run.retried):
            return


def campaign_run(args, segment_id: int, count) -> dict:
    from django.db import connections
    from django.db.models import Count
    from django.utils import timezone

    from cim.automation.campaigns import campaign_advance, campaign_cancel, campaign_create, campaign_start
    from cim.automation.models import Message

    variant = {
        "subject": "{{ customer.display_name }}，双十二特惠",
        "body": "亲爱的{{ customer.display_name }}：\n您的会员号 {{ customer.number }}，新品上市，详见 "
        "https://shop.example.com/sale\n",
        "html": '<p>亲爱的{{ customer.display_name }}：</p><p><a href="https://shop.example.com/sale">新品上市</a></p>',
    }
    campaign = campaign_create(
        actor=None, name=f"bench {timezone.now():%Y%m%d%H%M%S}", segment=segment_id, variants=[variant]
    )
    before = count.value
    started = time.perf_counter()
    campaign_start(campaign=campaign, actor=None)
    advance = campaign_advance(campaign=campaign)
    queued_at = time.perf_counter()
    connections.close_all()
    context = multiprocessing.get_context("fork")
    deadline = queued_at + args.deliver_seconds if args.deliver_seconds else 0
    procs = [context.Process(target=_worker, args=(args.batch, deadline)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    finished = time.perf_counter()
    delivered = count.value - before
    campaign_cancel(campaign=campaign, actor=None)  # a time-limited run leaves the rest queued: drop it
    statuses = dict(Message.objects.filter(campaign_id=campaign.pk).values_list("status").annotate(n=Count("pk")))
    return {
        "queued": advance.queued,
        "suppressed": advance.suppressed,
        "queue_seconds": queued_at - started,
        "deliver_seconds": finished - queued_at,
        "total_seconds": finished - started,
        "received": delivered,
        "statuses": statuses,
    }


def main() -> None:
    args = parse_args()
    setup_django(args)
    segment_id = build(args)
    from django.urls import reverse

    # Load the URLconf (and everything it imports) once, before forking: tracking links reverse URLs, and each
    # worker would otherwise import the whole site on its first message.
    reverse("automation:campaign_list")
    context = multiprocessing.get_context("fork")
    count = context.Value("q", 0)
    ready = context.Event()
    port = free_port()
    server = context.Process(target=_serve, args=(port, count, ready), daemon=True)
    server.start()
    ready.wait(30)
    os.environ["CIM_EMAIL_HOST"] = "127.0.0.1"
    from django.conf import settings

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    load_at_start = os.getloadavg()[0]
    try:
        raw = raw_rate(port, count, 20_000, args.workers)
        print(f"raw SMTP hand-off: {raw:,.0f} msg/s with {args.workers} senders", flush=True)
        result = campaign_run(args, segment_id, count)
    finally:
        server.terminate()
    n = result["received"]
    deliver_rate = n / result["deliver_seconds"]
    # Cut short (--deliver-seconds), the whole campaign's time is the queueing plus the rest at the measured rate.
    whole = result["queue_seconds"] + result["queued"] / deliver_rate if deliver_rate else float("inf")
    cut = f", delivery cut after {result['deliver_seconds']:.0f} s and projected" if args.deliver_seconds else ""
    load = os.getloadavg()
    print(result, flush=True)
    lines = [
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other engineers' jobs "
        f"(load average {load_at_start:.1f} at the start, {load[0]:.1f} at the end), Python "
        f"{platform.python_version()}, PostgreSQL; {datetime.now(UTC):%Y-%m-%d}; {args.recipients:,} recipients "
        f"with email and consent; aiosmtpd on loopback in its own process; {args.workers} delivery worker "
        f"processes, batches of {args.batch}.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| campaign to {result['queued']:,} recipients, start to last message accepted{cut} "
        f"| {result['queued'] / whole:,.0f} msg/s ({whole:,.0f} s) | ≥ {TARGET} msg/s |",
        f"| queueing: audience, consent, restriction, suppressed addresses, caps; one row per recipient "
        f"| {result['queue_seconds']:.1f} s ({result['queued'] / result['queue_seconds']:,.0f} recipients/s) | |",
        f"| delivery: claim, consent again, render with tracking links, SMTP with a commit before each DATA "
        f"terminator | {deliver_rate:,.0f} msg/s ({n:,} in {result['deliver_seconds']:.1f} s) | |",
        f"| raw SMTP hand-off to the same server: smtplib, pre-rendered, {args.workers} connections "
        f"| {raw:,.0f} msg/s | |",
        "",
        f"Messages after the run: {result['statuses']}; the server accepted {n:,}, each once.",
    ]
    print("\n".join(lines))
    write_section(HEADING, lines, args.results)


if __name__ == "__main__":
    main()
