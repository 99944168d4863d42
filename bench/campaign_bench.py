"""A campaign to 100,000 recipients over SMTP: `python bench/campaign_bench.py`.

Builds (once) a PostgreSQL database `cim_bench_campaign` of demo customers and puts the first N current customers
with an email address, each with marketing consent, on a static list. Starts an aiosmtpd server on loopback in
its own process (it counts messages and discards them). Then measures:

1. the raw SMTP hand-off rate of that server: smtplib sending the same number of pre-rendered messages over one
   connection per sender process, as many senders as the campaign has workers (the ceiling of any sender);
2. the campaign, start to last message accepted: W worker processes run `messages_deliver` from before the start,
   as `cim worker` does; `campaign_start` + `campaign_advance` resolve the audience set-based, check consent,
   restriction, suppressed addresses and caps per recipient and queue one `Message` each, committing slice by slice
   so delivery starts on the first; the workers check consent again at send time, render the template per
   recipient and hand each message over on one of their SMTP connections, one commit per window of messages
   before their DATA terminators.

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
        "--connections",
        type=int,
        default=16,
        help="SMTP connections per worker, CIM_EMAIL_CONNECTIONS (default 16; the product's default is 8)",
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
    os.environ["CIM_EMAIL_CONNECTIONS"] = str(args.connections)
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


def _worker(batch: int, queued) -> None:
    """A `cim worker` delivering: it runs from before the campaign starts, as in production, and stops once the
    campaign is queued and nothing is left."""
    from django.db import connections

    connections.close_all()  # never share the parent's connection
    from cim.automation.messaging import messages_deliver

    while True:
        run = messages_deliver(limit=batch, batch_size=batch)
        if not (run.sent or run.failed or run.suppressed or run.retried):
            if queued.is_set():
                return
            time.sleep(0.05)


def campaign_run(args, segment_id: int, count) -> dict:
    from django.db import connections
    from django.db.models import Count
    from django.utils import timezone

    from cim.automation.campaigns import campaign_advance, campaign_create, campaign_start
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
    with connections["default"].cursor() as cursor:
        # Earlier runs leave dead rows behind in the queue's index; autovacuum clears them in production.
        cursor.execute("VACUUM ANALYZE automation_message")
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queued = context.Event()
    procs = [context.Process(target=_worker, args=(args.batch, queued)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    before = count.value
    started = time.perf_counter()
    campaign_start(campaign=campaign, actor=None)
    advance = campaign_advance(campaign=campaign)  # slice by slice: the workers start on the first
    queued_at = time.perf_counter()
    accepted_while_queueing = count.value - before
    queued.set()
    for p in procs:
        p.join()
    finished = time.perf_counter()
    delivered = count.value - before
    campaign_advance(campaign=campaign)  # nothing left to hand over: the campaign is sent
    campaign.refresh_from_db()
    statuses = dict(Message.objects.filter(campaign_id=campaign.pk).values_list("status").annotate(n=Count("pk")))
    return {
        "queued": advance.queued,
        "suppressed": advance.suppressed,
        "queue_seconds": queued_at - started,
        "accepted_while_queueing": accepted_while_queueing,
        "total_seconds": finished - started,
        "received": delivered,
        "statuses": statuses,
        "campaign": campaign.status,
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

    from cim.automation.campaigns import QUEUE_SLICE

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
    load = os.getloadavg()
    print(result, flush=True)
    lines = [
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (load average {load_at_start:.1f} at "
        f"the start, {load[0]:.1f} at the end), Python {platform.python_version()}, PostgreSQL; "
        f"{datetime.now(UTC):%Y-%m-%d}; {args.recipients:,} recipients with email and consent; aiosmtpd on loopback "
        f"in its own process; {args.workers} delivery worker processes (batches of {args.batch}, "
        f"{settings.CIM_EMAIL_CONNECTIONS} SMTP connections each), running before the campaign starts.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| campaign to {result['queued']:,} recipients, start to last message accepted "
        f"| **{n / result['total_seconds']:,.0f} msg/s** ({result['total_seconds']:.1f} s) | ≥ {TARGET} msg/s |",
        f"| of it, queueing: audience, consent, restriction, suppressed addresses, caps; one row per recipient, "
        f"committed {QUEUE_SLICE:,} at a time | {result['queue_seconds']:.1f} s "
        f"({result['accepted_while_queueing']:,} messages already accepted by then) | |",
        f"| raw SMTP hand-off to the same server: smtplib, pre-rendered, {args.workers} connections "
        f"| {raw:,.0f} msg/s | |",
        "",
        f"Messages after the run: {result['statuses']}; the server accepted {n:,}, each once; the campaign is "
        f"`{result['campaign']}`.",
    ]
    print("\n".join(lines))
    write_section(HEADING, lines, args.results)


if __name__ == "__main__":
    main()
