"""A real PostgreSQL primary and streaming replica, made here on loopback ports (initdb, `pg_basebackup -R`):
exports, analytics and duplicate scans read on the replica, and every write lands on the primary."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from crashkit import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CIM = Path(sys.executable).parent / "cim"
# It makes its own clusters, so once is enough: in the SQLite pass of `make test`, not again in the PostgreSQL one.
pytestmark = pytest.mark.skipif(bool(os.environ.get("CIM_DATABASE_URL")), reason="runs once, in the SQLite pass")
CUSTOMERS = "姓名,手机号码\n" + "".join(f"客户{n},1380013{n:04d}\n" for n in range(40))


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)


@pytest.fixture(scope="module")
def streaming_replica():
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
        pytest.skip("needs root (to run PostgreSQL 15's initdb as the postgres user)")
    root = Path(tempfile.mkdtemp(prefix="cim-replica-"))
    shutil.chown(root, "postgres", "postgres")
    primary, replica = root / "primary", root / "replica"
    ports = {primary: free_port(), replica: free_port()}
    started = []
    try:
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres", "--no-sync")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\nwal_level = replica\n"
                "max_wal_senders = 4\nfsync = off\nlog_statement = 'all'\n"
            )
        for data in (primary, replica):
            if data is replica:
                url = f"host=127.0.0.1 port={ports[primary]} user=postgres"
                _as_postgres(str(PG_BIN / "pg_basebackup"), "-d", url, "-D", str(replica), "-R", "-X", "stream")
            with (data / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {ports[data]}\n")
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / f"{data.name}.log"), "-w", "start")
            started.append(data)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{ports[primary]}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE cim")
        yield {
            "primary": f"postgres://postgres@127.0.0.1:{ports[primary]}/cim",
            "replica": f"postgres://postgres@127.0.0.1:{ports[replica]}/cim",
            "primary_log": root / "primary.log",
            "replica_log": root / "replica.log",
        }
    finally:
        for data in reversed(started):
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _cim(env: dict, *args: str) -> str:
    done = subprocess.run([str(CIM), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _caught_up(primary: str, replica: str) -> None:
    with psycopg.connect(primary.replace("postgres://", "postgresql://")) as db:
        target = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + 30
    with psycopg.connect(replica.replace("postgres://", "postgresql://"), autocommit=True) as db:
        while db.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0] is not True:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.2)


def _new_lines(log: Path, since: int) -> str:
    return log.read_text(errors="replace")[since:]


def test_reads_of_bulk_work_go_to_the_replica_and_writes_to_the_primary(streaming_replica, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path / "data"),
        "CIM_DATABASE_URL": streaming_replica["primary"],
        "CIM_DATABASE_REPLICA_URL": streaming_replica["replica"],
    }
    _cim(env, "migrate", "--no-input", "-v0")
    _cim(env, "createuser", "boss", "--role", "administrator", "--password", "Replica-Test-Passphrase")
    upload = tmp_path / "customers.csv"
    upload.write_text(CUSTOMERS, encoding="utf-8")
    _cim(env, "import", "customers", str(upload), "--user", "boss")  # writes: on the primary, or it would fail
    _caught_up(streaming_replica["primary"], streaming_replica["replica"])

    logs = {name: streaming_replica[f"{name}_log"] for name in ("primary", "replica")}
    marks = {name: len(log.read_text(errors="replace")) for name, log in logs.items()}
    _cim(env, "export", "customers", "--user", "boss", "--output", str(tmp_path / "out.csv"))
    _cim(env, "analytics", "lifecycle")
    _cim(env, "dedupe")
    primary, replica = (_new_lines(log, marks[name]) for name, log in logs.items())

    assert (tmp_path / "out.csv").read_text(encoding="utf-8-sig").count("客户") == 40
    assert 'FROM "customers_customer"' in replica and 'FROM "customers_phone"' in replica  # export, scan
    assert 'FROM "activities_order"' in replica and "GROUP BY" in replica  # the analytics' order totals
    assert 'FROM "activities_order"' not in primary
    assert 'INSERT INTO "audit_auditevent"' in primary  # the export's audit entry
    assert "INSERT INTO" not in replica and "UPDATE " not in replica
