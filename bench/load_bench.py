"""The load run of issue 9: a working day (bench/locustfile.py) of 100 people at once against the production stack
(deploy/stack.py: nginx with TLS, gunicorn with two processes per core as deploy/gunicorn.conf.py sets by default,
2 workers on Redis, PostgreSQL) on this machine.

Loads 20,000 demo customers, signs the people in one after another (the login rate limit allows 30 a minute from
one address), then measures 5 minutes with all of them working, and writes the figures to bench/RESULTS.md.

    .venv/bin/python bench/load_bench.py [--users 100] [--minutes 5] [--customers 20000]
"""

import argparse
import csv
import datetime
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from results import write_section  # noqa: E402
from stack import BIN, production_stack, step  # noqa: E402

PASSWORD = "Load-Test-Passphrase-2026"
TEAM = "华东销售部"  # a demo team: its managers see its customers
ACCOUNTS = 20
SPAWN_PER_SECOND = 0.45  # under allauth's 30 logins a minute per address
# gunicorn's processes as production runs them: while one waits on PostgreSQL, another uses the core.
WEB_WORKERS = 2 * (os.cpu_count() or 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    accounts: list[str] = []
    keys: dict[str, str] = {}

    def prepare(stack):
        step(f"load {args.customers:,} demo customers; {ACCOUNTS} managers with API tokens; a website source")
        stack.cim("demo", "--customers", str(args.customers))
        for n in range(ACCOUNTS):
            username = f"load-{n}"
            stack.cim("createuser", username, "--role", "manager", "--team", TEAM, "--password", PASSWORD)
            token = stack.cim_json("token", "create", username, "--scope", "write")["token"]
            accounts.append(f"{username}:{PASSWORD}:{token}")
        keys["write"] = stack.cim_json("ingest", "source", "create", "压测官网", "--channel", "website")["write_key"]

    with production_stack(users=[], prepare=prepare, web_workers=WEB_WORKERS) as stack:
        token = accounts[0].split(":", 2)[2]
        numbers = [
            row["number"]
            for row in requests.get(
                f"{stack.base}/api/v1/customers?limit=500",
                headers={"Authorization": f"Bearer {token}"},
                verify=stack.cert,
                timeout=60,
            ).json()["items"]
        ]
        ramp = args.users / SPAWN_PER_SECOND
        step(f"locust: {args.users} people, {ramp:.0f} s to sign in, then {args.minutes:g} minutes measured")
        out = stack.tmp / "load"
        env = {
            **os.environ,
            "CIM_LOAD_USERS": ",".join(accounts),
            "CIM_LOAD_NUMBERS": ",".join(numbers),
            "CIM_LOAD_WRITE_KEY": keys["write"],
            "CIM_LOAD_CA": str(stack.cert),
        }
        locust = subprocess.Popen(
            [
                str(BIN / "locust"),
                *("-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--only-summary"),
                *("--host", stack.base, "-u", str(args.users), "-r", str(SPAWN_PER_SECOND)),
                *("-t", f"{int(ramp + args.minutes * 60)}s", "--reset-stats", "--csv", str(out)),
            ],
            env=env,
        )
        # CPU time per program over the measured minutes (locust still running at both ends).
        time.sleep(ramp + 5)
        before, started = cpu_seconds_by_program(), time.monotonic()
        time.sleep(args.minutes * 60 - 15)
        used = cpu_seconds_by_program() - before
        cpu = {program: seconds / (time.monotonic() - started) for program, seconds in used.most_common()}
        locust.wait()  # it exits 1 when any request failed; the figures say how many
        with open(f"{out}_stats.csv", encoding="utf-8") as stats:
            rows = list(csv.DictReader(stats))
    report(rows, cpu, args)
    return 0


PROGRAMS = {"gunicorn": "gunicorn", "postgres": "PostgreSQL", "locust": "locust", "nginx": "nginx"}
PROGRAMS |= {"cim worker": "RQ workers", "redis-server": "Redis"}


def cpu_seconds_by_program() -> Counter:
    """CPU seconds (user and system) every running process has used, summed per program of the stack. A
    process's reaped children count with it, so gunicorn workers recycled on the way are not lost."""
    tick = os.sysconf("SC_CLK_TCK")
    used: Counter = Counter()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        program = next((name for key, name in PROGRAMS.items() if key in command), "other")
        used[program] += sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
    return used


def report(rows: list[dict], cpu: dict[str, float], args) -> None:
    total = next(row for row in rows if row["Name"] == "Aggregated")
    requests_made, failures = int(total["Request Count"]), int(total["Failure Count"])
    lines = [
        f"`bench/load_bench.py --users {args.users} --minutes {args.minutes:g} --customers {args.customers}`: "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"nginx + gunicorn ({WEB_WORKERS} processes) + 2 RQ workers + PostgreSQL 15 + Redis 7 and locust itself, "
        "all on this machine.",
        "",
        f"Measured after every person had signed in: **{requests_made:,} requests, "
        f"{failures:,} failed ({100 * failures / max(requests_made, 1):.2f} %), "
        f"{float(total['Requests/s']):.1f} requests/s, p95 {total['95%']} ms** "
        "(targets: errors < 0.1 %, p95 < 300 ms).",
        "",
        "| request | count | failed | median ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["Name"] != "Aggregated":
            lines.append(
                f"| {row['Type']} {row['Name']} | {int(row['Request Count']):,} | {row['Failure Count']} "
                f"| {row['50%']} | {row['95%']} | {row['99%']} |"
            )
    shares = ", ".join(f"{program} {100 * share:.0f} %" for program, share in cpu.items() if share >= 0.005)
    web_ms = 1000 * cpu.get("gunicorn", 0) / max(float(total["Requests/s"]), 0.001)
    lines += [
        "",
        f"Where the two cores went over the measured minutes, in shares of one core: {shares}. The web processes "
        f"used {web_ms:.0f} ms of CPU per request.",
    ]
    write_section("Load: a working day of 100 people", lines)


if __name__ == "__main__":
    sys.exit(main())
