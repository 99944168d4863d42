"""Webhook delivery: deliveries per second to a local receiver, and fresh deliveries while a failing endpoint's
retries are due: `python bench/webhook_bench.py --events 20000`.

Builds a fresh SQLite database in bench/data/webhooks (or uses CIM_DATABASE_URL), publishes `--events`
`customer.updated` events about real customers, dispatches them (the outbox consumer records one delivery each),
then sends them with the worker's sender to a receiver in another process on loopback that verifies every
signature with standardwebhooks. Then the same again while a second endpoint hangs past the timeout on every
request and has `--retries` retries due: the fresh deliveries' latency and rate beside the first run's. Writes its
section of bench/RESULTS.md.
"""

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402


def setup(data_dir: Path) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def receive(port, secret: str, delay: float, counts, ready) -> None:
    """The receiver process: verifies every request's signature, answers 200 (after `delay` seconds)."""
    sys.path.insert(0, str(BENCH.parent / "src"))
    from cim.automation.tests.webhook_receiver import Receiver

    receiver = Receiver(secrets=[secret], delay=delay, keep=False).start()
    port.value = receiver.server.server_address[1]
    ready.set()
    while True:
        time.sleep(0.2)
        counts[0], counts[1] = receiver.count, receiver.bad_signatures


class Remote:
    def __init__(self, secret: str, delay: float = 0.0):
        context = multiprocessing.get_context("spawn")
        self.port, self.counts, ready = context.Value("i", 0), context.Array("i", 2), context.Event()
        self.process = context.Process(target=receive, args=(self.port, secret, delay, self.counts, ready))
        self.process.start()
        ready.wait(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.value}/hooks"

    def stop(self) -> tuple[int, int]:
        time.sleep(0.5)
        counts = (self.counts[0], self.counts[1])
        self.process.terminate()
        self.process.join()
        return counts


def ceiling(url: str, secret: str, count: int, concurrency: int) -> float:
    """Signed POSTs per second from the sender's HTTP loop alone (every request submitted at once), no database:
    what this machine and receiver allow at the moment, to read the sender's rate against."""
    from standardwebhooks import Webhook

    from cim.automation.webhook_sender import HttpLoop, Outgoing, post

    signers = [Webhook(secret)]
    body = '{"type":"customer.updated","version":1,"data":{"customer":{"number":"C000001"}}}'
    with HttpLoop(concurrency=concurrency, timeout=10) as http:
        started = time.perf_counter()
        futures = [
            http.submit(post(http.session, Outgoing(i, 1, url, f"msg_raw{i}", body, signers, 0, [])))
            for i in range(count)
        ]
        ok = sum(future.result().ok for future in futures)
        return ok / (time.perf_counter() - started)


def publish(customer_ids: list[int], count: int) -> float:
    """`count` customer.updated events over the customers, then dispatched; returns the dispatch's seconds."""
    from django.db import transaction

    from cim.automation.events import events_dispatch, events_publish

    with transaction.atomic():
        for start in range(0, count, len(customer_ids)):
            events_publish("customer.updated", customer_ids=customer_ids[: count - start], data={"fields": ["notes"]})
    started = time.perf_counter()
    while events_dispatch(batch_size=2000).events:
        pass
    return time.perf_counter() - started


def latencies(endpoint_id: int) -> list[float]:
    from cim.automation.models import WebhookDelivery

    rows = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status="succeeded")
    return [(done - made).total_seconds() for made, done in rows.values_list("created_at", "last_attempt_at")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--retries", type=int, default=2_000, help="retries due at the failing endpoint")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    data_dir = BENCH / "data" / "webhooks"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    setup(data_dir)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from cim.accounts.roles import Role
    from cim.accounts.services import user_create
    from cim.automation.models import WebhookDelivery
    from cim.automation.webhook_sender import Sender
    from cim.automation.webhooks import message_id, webhook_endpoint_create
    from cim.customers.schemas import CustomerInput
    from cim.customers.services import customer_create

    call_command("migrate", verbosity=0)
    admin, _ = user_create(username="bench-admin", role=Role.ADMINISTRATOR, password="Correct-Horse-Battery-42")

    data = {"url": "http://127.0.0.1:1/", "event_types": ["customer.updated"], "scope_role": "administrator"}
    healthy, secret = webhook_endpoint_create(data=data, actor=admin)
    customers = [
        customer_create(
            data=CustomerInput(display_name=f"客户{i}", phones=[{"number": f"138{i:08d}"}], tags=["VIP"]), actor=admin
        ).pk
        for i in range(args.customers)
    ]
    receiver = Remote(secret)
    healthy.url = receiver.url
    healthy.save(update_fields=["url"])
    settings.CIM_WEBHOOK_TIMEOUT_SECONDS = 2
    # The hanging endpoint must stay on for the whole second run, its retries due (not switched off after 50).
    settings.CIM_WEBHOOK_DISABLE_AFTER_FAILURES = 10**9
    settings.CIM_WEBHOOK_DISABLE_AFTER_HOURS = 10**6

    load = os.getloadavg()
    raw = ceiling(receiver.url, secret, min(args.events, 5000), 64)

    # 1. Throughput: every delivery to one healthy endpoint.
    dispatch_seconds = publish(customers, args.events)
    recorded = WebhookDelivery.objects.count()
    started = time.perf_counter()
    run = Sender().send(seconds=600)
    send_seconds = time.perf_counter() - started
    rate = run.succeeded / send_seconds
    base = latencies(healthy.pk)

    # 2. The same while a second endpoint hangs past the timeout and has retries due.
    failing, _secret = webhook_endpoint_create(
        data={"url": "http://127.0.0.1:1/", "event_types": ["order.placed"], "scope_role": "administrator"},
        actor=admin,
    )
    hanging = Remote(_secret, delay=5.0)
    failing.url = hanging.url
    failing.save(update_fields=["url"])
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=failing,
            key=f"retry:{i}",
            message_id=message_id(failing.pk, f"retry:{i}"),
            event_type="order.placed",
            payload={"type": "order.placed", "version": 1, "timestamp": now.isoformat(), "data": {"order": i}},
            status="failed",
            attempts=1,
            next_attempt_at=now - timedelta(seconds=1),
        )
        for i in range(args.retries)
    )
    WebhookDelivery.objects.filter(endpoint=healthy).delete()
    publish(customers, args.events)
    # Long enough for the fresh ones at the first run's rate, and then some; the hanging endpoint never empties.
    Sender().send(seconds=args.events / rate * 1.5 + 5)
    fresh = latencies(healthy.pk)
    fresh_done = WebhookDelivery.objects.filter(endpoint=healthy, status="succeeded")
    last = max(fresh_done.values_list("last_attempt_at", flat=True))
    first = min(fresh_done.values_list("created_at", flat=True))
    fresh_rate = len(fresh) / max((last - first).total_seconds(), 1e-9)
    retried = WebhookDelivery.objects.filter(endpoint=failing, attempts__gt=1).count()
    received, bad = receiver.stop()
    hanging.stop()

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values or [0])[0]

    cpu = os.cpu_count()
    lines = [
        f"Machine: {platform.platform()}, {cpu} cores (load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end), "
        f"{connection.vendor}, Python {platform.python_version()}. {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        f"`python bench/webhook_bench.py --events {args.events} --retries {args.retries}`",
        "",
        "Sender: 64 concurrent requests (one asyncio loop over an aiohttp connection pool, keep-alive), "
        "≤ 16 per endpoint; "
        "receiver: a separate process on loopback (ThreadingHTTPServer) verifying every signature with "
        "standardwebhooks; payloads carry the customer (scope: administrator).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| events dispatched → deliveries recorded | {recorded:,} in {dispatch_seconds:.1f} s "
        f"({recorded / dispatch_seconds:,.0f}/s) |",
        f"| deliveries sent, one healthy endpoint | {run.succeeded:,} in {send_seconds:.1f} s: "
        f"**{rate:,.0f} deliveries/s** |",
        f"| the same machine and receiver's ceiling at that moment: the sender's HTTP loop alone, no database "
        f"| {raw:,.0f} requests/s (the sender reaches {rate / raw:.0%} of it) |",
        f"| signatures the receiver rejected | {bad} of {received:,} |",
        f"| latency created → delivered, healthy only (p50 / p95) | {pct(base, 50):.2f} s / {pct(base, 95):.2f} s |",
        f"| same, while another endpoint hangs 5 s (timeout 2 s) on each of {args.retries:,} due retries "
        f"| {len(fresh):,} delivered at {fresh_rate:,.0f}/s; p50 {pct(fresh, 50):.2f} s / p95 {pct(fresh, 95):.2f} s; "
        f"{retried:,} retries tried meanwhile |",
    ]
    met = "met" if min(rate, fresh_rate) >= 500 else "**not met**"
    lines += [
        "",
        f"Target ≥ 500 deliveries/s, retries not blocking fresh events: {met} ({rate:,.0f}/s alone, "
        f"{fresh_rate:,.0f}/s beside the hanging endpoint's retries).",
    ]
    write_section("Webhook delivery", lines, args.results)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
