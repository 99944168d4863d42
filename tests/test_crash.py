"""SIGKILL in the middle of writes: nothing acknowledged is lost, and a job cut short finishes once, elsewhere.

Real processes on a real SQLite file: gunicorn taking API writes, and `cim worker` importing a file.
"""

import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from crashkit import free_port, kill, start, wait_for

BIN = Path(sys.executable).parent
ROWS = 60_000  # three import batches

pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")


@pytest.fixture
def installation(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path / "data"),
        "CIM_WORKER_HEARTBEAT_SECONDS": "1",
    }
    env.pop("CIM_DATABASE_URL", None)
    for args in (["migrate", "--no-input", "-v0"], ["createuser", "boss", "--role", "manager", "--password", "x" * 20]):
        subprocess.run([str(BIN / "cim"), *args], env=env, check=True, capture_output=True)
    database = sqlite3.connect(tmp_path / "data" / "cim.sqlite3", timeout=30)
    yield env, database
    database.close()


def test_a_worker_killed_mid_import_loses_nothing_and_another_finishes_it_once(installation, tmp_path):
    env, database = installation
    upload = tmp_path / "customers.csv"
    upload.write_text("姓名,手机号码\n" + "".join(f"客户{n},139{n:08d}\n" for n in range(ROWS)), encoding="utf-8")
    queued = subprocess.run(
        [str(BIN / "cim"), "import", "customers", str(upload), "--background", "--user", "boss", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    job = json.loads(queued.stdout.strip().splitlines()[-1])["job"]
    done = lambda: database.execute("SELECT rows_done FROM ingest_importjob WHERE id = ?", [job]).fetchone()[0]  # noqa: E731

    first = start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-1.log")
    wait_for(lambda: done() > 0, 180, "the first committed batch")
    kill(first)
    cut_at = done()
    assert 0 < cut_at < ROWS, "the import finished before the kill: make the file bigger"

    second = start([str(BIN / "cim"), "worker", "--no-periodic"], env, tmp_path / "worker-2.log")
    try:
        wait_for(
            lambda: database.execute("SELECT status FROM ingest_importjob WHERE id = ?", [job]).fetchone()[0] == "done",
            300,
            "the second worker to take the abandoned import over and finish it",
        )
    finally:
        kill(second)
    customers = database.execute("SELECT count(*), count(DISTINCT display_name) FROM customers_customer").fetchone()
    assert customers == (ROWS, ROWS)
    assert database.execute("SELECT count(*) FROM customers_phone").fetchone()[0] == ROWS


def test_the_server_killed_mid_writes_keeps_every_acknowledged_customer(installation, tmp_path):
    env, database = installation
    created = subprocess.run(
        [str(BIN / "cim"), "token", "create", "boss", "--scope", "write", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    port = free_port()
    server = start(
        [str(BIN / "gunicorn"), "cim.config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env,
        tmp_path / "gunicorn.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/health"), 60, "gunicorn")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def create(n: int) -> str | None:
        try:
            response = session.post(f"{base}/api/v1/customers", json={"display_name": f"写入{n}"}, timeout=10)
        except requests.RequestException:
            return None  # cut off: not acknowledged
        return response.json()["number"] if response.status_code == 201 else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(create, n) for n in range(400)]
        wait_for(lambda: sum(f.done() for f in futures) >= 50, 120, "the first acknowledged writes")
        kill(server)
        acknowledged = {number for future in futures if (number := future.result())}
    stored = {row[0] for row in database.execute("SELECT number FROM customers_customer")}
    assert len(acknowledged) >= 50
    assert acknowledged <= stored


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
