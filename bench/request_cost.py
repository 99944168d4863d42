"""What one request of the load run's working day costs the web process: CPU and Python function calls per request
kind, in one process, without the network, the other processes or the queue.

The load run's p95 follows the CPU a request takes, but this machine's speed drifts by ±40 % within an hour, so
CPU times of two runs compare badly. The number of Python function calls a request makes does not drift: it is the
figure to compare code with code. Builds a scratch PostgreSQL database with the load run's data (demo customers, a
manager of a demo team, a write token, a website source), sends each kind of request of bench/locustfile.py with the
Django test client, and writes a section of bench/RESULTS.md.

    .venv/bin/python bench/request_cost.py [--customers 20000] [--requests 30]
"""

import argparse
import base64
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402
from scenario import SEARCHES  # noqa: E402
from stack import scratch_database  # noqa: E402

TEAM = "华东销售部"
JSON = "application/json"
HOST = "localhost"  # in the default CIM_ALLOWED_HOSTS
# The locust scenario's task weights (bench/locustfile.py).
WEIGHTS = {
    "list page, whole": 15,
    "list page, results (htmx)": 15,
    "search, results (htmx)": 25,
    "customer page": 20,
    "API create": 5,
    "API edit": 5,
    "API log call": 5,
    "tracking batch of 20 events": 8,
    "export": 2,
}


def prepare(customers: int) -> dict:
    from django.core.management import call_command

    from cim.accounts.models import Team
    from cim.accounts.roles import Role
    from cim.accounts.services import api_token_create, user_create
    from cim.customers.models import Customer
    from cim.ingest.sources import event_source_create

    call_command("migrate", verbosity=0)
    call_command("demo", customers=customers, verbosity=0)
    user, _ = user_create(
        username="cost", role=Role.MANAGER, password="Cost-Bench-Passphrase-2026", team=Team.objects.get(name=TEAM)
    )
    _, token = api_token_create(user=user, scope="write")
    _, write_key = event_source_create(name="压测官网", source_channel="website", actor=None)
    numbers = list(Customer.objects.filter(team__name=TEAM).values_list("number", flat=True)[:500])
    return {"user": user, "token": token, "write_key": write_key, "numbers": numbers}


def request_kinds(setup: dict) -> dict:
    from django.test import Client

    page = Client(HTTP_HOST=HOST)
    page.force_login(setup["user"])
    api = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {setup['token']}")
    basic = base64.b64encode(f"{setup['write_key']}:".encode()).decode()
    tracker = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Basic {basic}")
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}
    numbers, mine = setup["numbers"], []

    def create():
        phone = f"13{random.randint(0, 9)}{random.randint(0, 99_999_999):08d}"
        body = {"display_name": f"负载客户{uuid.uuid4().hex[:6]}", "phones": [{"number": phone}]}
        response = api.post("/api/v1/customers", json.dumps(body), content_type=JSON)
        if response.status_code == 201:
            mine.append(response.json()["number"])
        return response

    def export():
        response = page.get(f"/customers/export/?format=csv&q={random.choice(SEARCHES)}")
        b"".join(response.streaming_content)
        return response

    def batch():
        events = [{"type": "page", "anonymousId": uuid.uuid4().hex, "name": "产品页", "properties": {"path": "/p/1"}}]
        return tracker.post("/ingest/v1/batch", json.dumps({"batch": events * 20}), content_type=JSON)

    call = {"kind": "call", "direction": "outbound", "subject": "回访", "body": "客户对服务满意"}
    search = "/?q={}&status=current&sort=-created&per_page=25"
    return {
        "list page, whole": lambda: page.get("/"),
        "list page, results (htmx)": lambda: page.get(f"/?page={random.randint(2, 20)}", **htmx),
        "search, results (htmx)": lambda: page.get(search.format(random.choice(SEARCHES)), **htmx),
        "customer page": lambda: page.get(f"/customers/{random.choice(numbers)}/"),
        "API create": create,
        "API edit": lambda: api.patch(
            f"/api/v1/customers/{random.choice(mine or numbers)}",
            json.dumps({"alias": f"别名{random.randint(1, 999)}"}),
            content_type=JSON,
        ),
        "API log call": lambda: api.post(
            f"/api/v1/customers/{random.choice(numbers)}/interactions", json.dumps(call), content_type=JSON
        ),
        "tracking batch of 20 events": batch,
        "export": export,
    }


def measure(send, requests: int) -> tuple[float, float]:
    """Median CPU milliseconds and mean thousands of Python function calls per request."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    for _ in range(3):  # warm caches and connections
        response = send()
        # 409: the random phone of a new customer is someone's already, a real answer (as in the load run)
        assert response.status_code < 300 or response.status_code == 409, (response.status_code, response.content)
    cpu = []
    for _ in range(requests):
        start = time.process_time()
        send()
        cpu.append((time.process_time() - start) * 1000)
    calls = 0
    sys.setprofile(count)
    for _ in range(requests):
        send()
    sys.setprofile(None)
    return statistics.median(cpu), calls / requests / 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30, help="of each kind")
    args = parser.parse_args()
    with ExitStack() as stack:
        os.environ["CIM_DATABASE_URL"] = scratch_database(stack)
        os.environ.setdefault("CIM_DATA_DIR", str(ROOT / "var" / "request-cost"))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
        import logging

        import django

        django.setup()
        logging.disable(logging.CRITICAL)  # the access log line of every request, on stderr
        from django.db import connections

        setup = prepare(args.customers)
        rows, cpu_total, calls_total = [], 0.0, 0.0
        for kind, send in request_kinds(setup).items():
            random.seed(kind)  # the same customers, pages and searches in every run
            cpu, kcalls = measure(send, args.requests)
            rows.append(f"| {kind} | {WEIGHTS[kind]} | {cpu:.1f} | {kcalls:.1f} |")
            cpu_total += WEIGHTS[kind] * cpu / 100
            calls_total += WEIGHTS[kind] * kcalls / 100
            print(rows[-1], flush=True)
        connections.close_all()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        "Load: what one request costs the web process",
        [
            f"`bench/request_cost.py --customers {args.customers} --requests {args.requests}`: {when}, "
            f"{os.cpu_count()} CPUs ({platform.machine()}), PostgreSQL, one process, a manager of {TEAM}. "
            "CPU is the median per request; Python function calls the mean, and they do not drift with the "
            "machine's speed as CPU time does.",
            "",
            "| request | weight in the load run | CPU ms | thousand Python calls |",
            "|---|---:|---:|---:|",
            *rows,
            f"| **weighted mean** | | **{cpu_total:.1f}** | **{calls_total:.1f}** |",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
