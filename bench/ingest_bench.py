"""Tracking API throughput: `python bench/ingest_bench.py [--events N] [--processes P]`.

Sends Segment-style `batch` requests of 100 events (analytics.js-sized: context with page, campaign, user
agent) through Django's test client to POST /ingest/v1/batch, so JSON parsing, validation, the service and
SQLite's commit are all timed; then times the service `events_ingest` alone on the same kind of batches.
Two streams: track/page events of customers already identified, and the same with one identify in twenty
(new customers, through the customer services). A fresh SQLite database is made in bench/data/ingest/.
With `--processes 2` both cores send at once (SQLite serialises the commits). Target: ≥ 1,000 events/s.
"""

import argparse
import base64
import json
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import write_section  # noqa: E402

BATCH = 100
TARGET = 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per stream (default 20,000)")
    parser.add_argument("--processes", type=int, default=1, help="processes sending at once (default 1)")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data" / "ingest")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def setup_django(data_dir: Path) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    os.environ.pop("CIM_DATABASE_URL", None)
    os.environ["CIM_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"  # django.test.Client is "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def event(rng: random.Random, user: int, n: int, tag: str) -> dict:
    """A track or page call as analytics.js sends it."""
    path = rng.choice(["/", "/pricing", "/products/42", "/cart", "/checkout"])
    common = {
        "messageId": f"{tag}-{n}",
        "userId": f"user-{user}",
        "anonymousId": f"anon-{user}",
        "timestamp": f"2026-06-18T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
        "context": {
            "ip": f"10.0.{user % 250}.{n % 250}",
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
            "locale": "zh-CN",
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {"path": path, "url": f"https://shop.example.com{path}", "title": "示例商城", "referrer": ""},
            "campaign": {"source": "baidu", "medium": "cpc", "name": "618"},
        },
    }
    if rng.random() < 0.5:
        return {**common, "type": "page", "name": path, "properties": {"path": path}}
    return {**common, "type": "track", "event": "Product Viewed", "properties": {"sku": f"SKU-{n % 500}", "price": 99}}


def identify(user: int, n: int, tag: str) -> dict:
    return {
        "type": "identify",
        "messageId": f"{tag}-{n}",
        "userId": f"user-{user}",
        "anonymousId": f"anon-{user}",
        "traits": {"name": f"客户{user}", "email": f"user{user}@example.com", "plan": "pro"},
    }


def stream(kind: str, events: int, seed: int, tag: str, new_users_from: int) -> list[list[dict]]:
    """Batches of `kind` ("known": customers identified beforehand; "mixed": one identify in twenty, of a new user)."""
    rng = random.Random(seed)
    rows, next_user = [], new_users_from
    for n in range(events):
        if kind == "mixed" and n % 20 == 0:
            next_user += 1
            rows.append(identify(next_user, n, tag))
        else:
            rows.append(event(rng, rng.randrange(1000), n, tag))
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


def send(job: tuple) -> tuple[int, float]:
    """Post the batches through the test client; (events, seconds). Runs in a worker process when P > 1."""
    data_dir, write_key, batches = job
    setup_django(data_dir)
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{write_key}:".encode()).decode())
    bodies = [json.dumps({"batch": batch, "sentAt": "2026-06-18T10:00:00Z"}) for batch in batches]
    start = time.perf_counter()
    for body in bodies:
        response = client.post("/ingest/v1/batch", data=body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
    seconds = time.perf_counter() - start
    connection.close()
    return sum(len(b) for b in batches), seconds


def over_http(data_dir: Path, write_key: str, kind: str, args) -> tuple[int, float]:
    batches = stream(kind, args.events, args.seed, f"http-{kind}", new_users_from=1_000_000)
    if args.processes == 1:
        return send((data_dir, write_key, batches))
    shares = [batches[i :: args.processes] for i in range(args.processes)]
    # spawn: each worker opens its own database connection instead of sharing the parent's. Workers time
    # their own sending (not their start-up); the slowest one is the time of the whole.
    with get_context("spawn").Pool(args.processes) as pool:
        results = pool.map(send, [(data_dir, write_key, share) for share in shares])
    return sum(n for n, _ in results), max(seconds for _, seconds in results)


def service_only(source, kind: str, args) -> tuple[int, float]:
    from cim.activities.schemas import TrackingMessage
    from cim.activities.services import events_ingest

    raw = stream(kind, args.events, args.seed, f"service-{kind}", new_users_from=2_000_000)
    batches = [[TrackingMessage.model_validate(e) for e in batch] for batch in raw]
    start = time.perf_counter()
    for batch in batches:
        events_ingest(source=source, messages=batch)
    return sum(len(b) for b in batches), time.perf_counter() - start


def main() -> None:
    args = parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    setup_django(args.data_dir)
    from django.core.management import call_command

    from cim.activities.schemas import TrackingMessage
    from cim.activities.services import events_ingest
    from cim.ingest.sources import event_source_create

    call_command("migrate", verbosity=0)
    source, write_key = event_source_create(name="bench", actor=None)
    # The "known" stream's customers, identified beforehand.
    known = [TrackingMessage.model_validate(identify(u, u, "setup")) for u in range(1000)]
    for i in range(0, len(known), BATCH):
        events_ingest(source=source, messages=known[i : i + BATCH])

    print(f"{args.events:,} events per stream, batches of {BATCH}, {args.processes} process(es), SQLite")
    print(f"{'measure':<44} {'events':>8} {'seconds':>8} {'events/s':>9}  met")
    lines = [
        f"`bench/ingest_bench.py --events {args.events} --processes {args.processes}`: {BATCH}-event `batch` "
        f"requests on SQLite, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}. *known*: track/page of identified customers; *mixed*: 1 event in 20 is an "
        f"identify that creates a customer. Target ≥ {TARGET:,} events/s.",
        "",
        "| measure | events | seconds | events/s | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for kind in ("known", "mixed"):
        for label, run in (
            (f"POST /ingest/v1/batch, {kind}", lambda k=kind: over_http(args.data_dir, write_key, k, args)),
            (f"events_ingest (service only), {kind}", lambda k=kind: service_only(source, k, args)),
        ):
            events, seconds = run()
            rate = events / seconds
            met = "yes" if rate >= TARGET else "no"
            print(f"{label:<44} {events:>8,} {seconds:>8.2f} {rate:>9,.0f}  {met}")
            lines.append(f"| {label} | {events:,} | {seconds:.2f} | {rate:,.0f} | {met} |")
    write_section("Event ingestion", lines)


if __name__ == "__main__":
    main()
