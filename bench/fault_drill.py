"""The fault drill of docs/deploy.md: the production stack on a PostgreSQL and a Redis of its own, taking writes
all along while its parts fail, and then every acknowledged write looked for.

Writers create customers through the API and send batches of website events to /ingest/v1/batch, without pause;
a write counts as acknowledged when CIM answered 201 or 200, and a 503 with Retry-After is tried again. Meanwhile:
a 40,000-row import runs on a worker that is SIGKILLed mid-import (a new worker finishes it); PostgreSQL is
restarted; Redis is stopped for a minute and started again. Afterwards the database must hold every acknowledged
customer and event, the import exactly its rows, and no answer may have been a 500.

Needs root (initdb runs as the postgres user) and redis-server. `python bench/fault_drill.py` (part of
`make bench`); the figures go to bench/RESULTS.md.
"""

import argparse
import base64
import datetime
import os
import platform
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from results import write_section  # noqa: E402
from stack import postgres_cluster, production_stack, redis_server, step  # noqa: E402

PASSWORD = "Drill-Test-Passphrase-2026"
IMPORT_ROWS = 40_000


class Writers:
    """Threads writing through nginx until stopped, keeping what was acknowledged and every answer's status."""

    def __init__(self, base: str, cert: Path, token: str, write_key: str, threads: int = 4):
        self.base, self.cert = base, cert
        self.api = {"Authorization": f"Bearer {token}"}
        self.ingest = {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
        self.customers: list[str] = []
        self.events: list[str] = []
        self.statuses: Counter = Counter()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _post(self, session: requests.Session, path: str, body: dict, headers: dict) -> requests.Response | None:
        try:
            response = session.post(f"{self.base}{path}", json=body, headers=headers, verify=self.cert, timeout=60)
        except requests.RequestException:
            with self.lock:
                self.statuses["no answer"] += 1
            time.sleep(0.5)
            return None
        with self.lock:
            self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            time.sleep(0.5)
        return response

    def _write(self, n: int) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            body = {"display_name": f"演练客户{uuid.uuid4().hex[:8]}"}
            response = self._post(session, "/api/v1/customers", body, self.api)
            if response is not None and response.status_code == 201:
                with self.lock:
                    self.customers.append(response.json()["number"])
            ids = [f"drill-{uuid.uuid4().hex}" for _ in range(10)]
            batch = [{"type": "track", "anonymousId": f"a{n}", "event": "演练", "messageId": i} for i in ids]
            response = self._post(session, "/ingest/v1/batch", {"batch": batch}, self.ingest)
            if response is not None and response.status_code == 200:
                with self.lock:
                    self.events.extend(ids)


def wait_for(what: str, condition, seconds: float = 600) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"gave up waiting: {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-down-seconds", type=float, default=60)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the drill needs root: initdb runs as the postgres user")
    keys: dict[str, str] = {}
    rows_file = Path("/tmp") / f"cim-drill-{os.getpid()}.csv"
    rows_file.write_text(
        "姓名,手机号码\n" + "".join(f"导入客户{n},1{n % 9 + 3}{n:09d}\n" for n in range(IMPORT_ROWS)), encoding="utf-8"
    )

    def prepare(stack):
        stack.cim("createuser", "drill", "--role", "manager", "--password", PASSWORD)
        keys["token"] = stack.cim_json("token", "create", "drill", "--scope", "write")["token"]
        keys["write"] = stack.cim_json("ingest", "source", "create", "演练官网", "--channel", "website")["write_key"]

    figures: dict[str, object] = {}
    with (
        postgres_cluster() as postgres,
        redis_server() as redis,
        production_stack(
            users=[("drill-admin", "administrator", PASSWORD)],
            prepare=prepare,
            postgres=postgres.url,
            redis_url=redis.url,
        ) as stack,
    ):
        database = stack.env["CIM_DATABASE_URL"]

        def sql(query: str, *params):
            with psycopg.connect(database) as db:
                return db.execute(query, params).fetchall()

        with Writers(stack.base, stack.cert, keys["token"], keys["write"]) as writers:
            time.sleep(10)
            step(f"import {IMPORT_ROWS:,} rows in the background; SIGKILL the workers mid-import")
            stack.cim("import", "customers", str(rows_file), "--background", "--user", "drill-admin")
            wait_for("the import to start", lambda: sql("SELECT rows_done FROM ingest_importjob")[0][0] > 0)
            for worker in stack.workers:
                os.killpg(worker.pid, signal.SIGKILL)
            killed_at = sql("SELECT rows_done FROM ingest_importjob")[0][0]
            stack.start_worker()
            figures["import seconds after the kill"] = wait_for(
                "the import to finish", lambda: sql("SELECT status FROM ingest_importjob")[0][0] == "done"
            )
            figures["import killed at row"] = killed_at

            step("restart PostgreSQL during writes")
            acknowledged = len(writers.customers)
            postgres.restart()
            figures["writes again after PostgreSQL restart (s)"] = wait_for(
                "writes after the restart", lambda: len(writers.customers) > acknowledged + 5, 120
            )

            step(f"stop Redis for {args.redis_down_seconds:g} s during writes")
            events_before = len(writers.events)
            redis.stop()
            time.sleep(args.redis_down_seconds)
            figures["events acknowledged while Redis was down"] = len(writers.events) - events_before
            redis.start()
            time.sleep(15)

        step("look for every acknowledged write")
        stored = {row[0] for row in sql("SELECT number FROM customers_customer")}
        events = {row[0] for row in sql("SELECT message_id FROM activities_behaviourevent")}
        job = sql("SELECT status, counts FROM ingest_importjob")[0]
        imported = sql("SELECT count(*) FROM customers_customer WHERE display_name LIKE '导入客户%%'")[0][0]
        figures.update(
            {
                "customers acknowledged": len(writers.customers),
                "customers lost": len(set(writers.customers) - stored),
                "events acknowledged": len(writers.events),
                "events lost": len(set(writers.events) - events),
                "import": f"{job[0]}, {imported:,} of {IMPORT_ROWS:,} rows (counts {job[1]})",
                "answers": dict(writers.statuses),
            }
        )
    rows_file.unlink()
    report(figures, args)
    lost = figures["customers lost"] or figures["events lost"] or imported != IMPORT_ROWS
    errors = sum(n for status, n in figures["answers"].items() if status == 500)
    return 1 if lost or errors else 0


def report(figures: dict, args) -> None:
    answers = ", ".join(f"{status}: {n:,}" for status, n in sorted(figures["answers"].items(), key=str))
    lines = [
        f"`bench/fault_drill.py`: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs "
        f"({platform.machine()}); the production stack (nginx, gunicorn with 2 processes, 2 RQ workers) on a "
        "PostgreSQL 15 (fsync on) and a Redis 7 (append-only) of its own; 4 writers without pause.",
        "",
        "| | |",
        "|---|---|",
        f"| customers acknowledged (201) / lost | {figures['customers acknowledged']:,} / "
        f"**{figures['customers lost']}** |",
        f"| website events acknowledged (200) / lost | {figures['events acknowledged']:,} / "
        f"**{figures['events lost']}** |",
        f"| import, both workers SIGKILLed at row {figures['import killed at row']:,}; a new worker finished it "
        f"{figures['import seconds after the kill']:.0f} s later | {figures['import']} |",
        f"| PostgreSQL restarted: writes acknowledged again after | "
        f"{figures['writes again after PostgreSQL restart (s)']:.1f} s |",
        f"| events acknowledged while Redis was down ({args.redis_down_seconds:g} s) | "
        f"{figures['events acknowledged while Redis was down']:,} |",
        f"| answers | {answers} |",
    ]
    write_section("Fault drill: acknowledged writes across a worker kill, a PostgreSQL restart and Redis down", lines)


if __name__ == "__main__":
    sys.exit(main())
