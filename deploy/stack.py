"""The production stack of docs/deploy.md, started on loopback in a scratch folder and stopped afterwards:
PostgreSQL (a new database on the running server), Redis, gunicorn, `cim worker` processes on Redis and Debian's
nginx with a self-signed certificate. Used by `make prod-smoke` (deploy/smoke.py) and the load run
(bench/load_bench.py)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("CIM_SMOKE_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("CIM_SMOKE_REDIS", "redis://127.0.0.1:6379/13")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

NGINX_MAIN = Template("""
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
daemon off;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log $tmp/nginx-access.log;
    client_body_temp_path $tmp/nginx-body;
    proxy_temp_path $tmp/nginx-proxy;
    fastcgi_temp_path $tmp/nginx-fastcgi;
    uwsgi_temp_path $tmp/nginx-uwsgi;
    scgi_temp_path $tmp/nginx-scgi;
    include $tmp/cim.conf;
}
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def step(message: str) -> None:
    print(f"== {message}", flush=True)


def run(env: dict, *args: str) -> None:
    done = subprocess.run([str(BIN / "cim"), *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"cim {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def start(stack: ExitStack, name: str, command: list[str], env: dict, tmp: Path) -> subprocess.Popen:
    log = open(tmp / f"{name}.log", "w")  # noqa: SIM115  (closed by the stack)
    stack.callback(log.close)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    stack.callback(stop)
    return process


def scratch_database(stack: ExitStack, postgres: str = POSTGRES) -> str:
    name = f"cim_smoke_{os.getpid()}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    return f"{postgres}/{name}"


def as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)


@dataclass
class PostgresCluster:
    """A PostgreSQL server of its own on a loopback port (fsync on), which a fault drill may restart."""

    url: str  # postgres://postgres@127.0.0.1:PORT
    data: Path
    log: Path

    def restart(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb, start, and on leaving stop and remove: needs root (initdb runs as the postgres user)."""
    root = Path(tempfile.mkdtemp(prefix="cim-pg-"))
    shutil.chown(root, "postgres", "postgres")
    port = free_port()
    cluster = PostgresCluster(url=f"postgres://postgres@127.0.0.1:{port}", data=root / "data", log=root / "pg.log")
    as_postgres(str(PG_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync")
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n")
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.log), "-w", "start")
    try:
        yield cluster
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class RedisServer:
    """A Redis server of its own on a loopback port, with its append-only file as docs/deploy.md asks."""

    url: str
    port: int
    directory: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        self.process = subprocess.Popen([*command, "--appendonly", "yes"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis writes its append-only file and exits
            self.process.wait(timeout=30)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="cim-redis-"))
    port = free_port()
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def certificate(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cim.pem", tmp / "cim.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def nginx_config(tmp: Path, *, https: int, http: int, upstream: str, cert: Path, key: Path, static: Path) -> Path:
    site = (ROOT / "deploy/nginx/cim.conf").read_text()
    for name, value in {
        "SERVER_NAME": "localhost",
        "HTTPS_PORT": str(https),
        "HTTP_PORT": str(http),
        "UPSTREAM": upstream,
        "CERTIFICATE": str(cert),
        "KEY": str(key),
        "STATIC_ROOT": str(static),
    }.items():
        site = site.replace(f"@{name}@", value)
    assert "@" not in re.sub(r"#.*", "", site), "a placeholder of deploy/nginx/cim.conf was not filled"
    (tmp / "cim.conf").write_text(site)
    main = tmp / "nginx.conf"
    main.write_text(NGINX_MAIN.substitute(tmp=tmp))
    return main


def wait_ready(base: str, cert: Path, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{base}/ready", verify=cert, timeout=15)
            body = response.json()
            if response.status_code == 200:
                return body
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"the stack did not become ready: {body}")


@dataclass
class Stack:
    base: str  # https://localhost:PORT
    http_port: int
    cert: Path
    env: dict
    tmp: Path
    worker_ports: list[int] = field(default_factory=list)
    workers: list[subprocess.Popen] = field(default_factory=list)
    exit_stack: ExitStack | None = None

    def start_worker(self) -> subprocess.Popen:
        """One more `cim worker` process on Redis, stopped with the stack."""
        port = free_port()
        self.worker_ports.append(port)
        command = [str(BIN / "cim"), "worker", "--metrics-listen", f"127.0.0.1:{port}"]
        self.workers.append(start(self.exit_stack, f"worker-{port}", command, self.env, self.tmp))
        return self.workers[-1]

    def cim(self, *args: str) -> None:
        run(self.env, *args)

    def cim_json(self, *args: str) -> dict:
        """A command's `--json` report (its last line)."""
        done = subprocess.run([str(BIN / "cim"), *args, "--json"], env=self.env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"cim {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def production_stack(
    *,
    users: list[tuple[str, str, str]],
    web_workers: int = 2,
    workers: int = 2,
    prepare=None,
    postgres: str = POSTGRES,
    redis_url: str = REDIS,
) -> Iterator[Stack]:
    """The stack, ready (`/ready` answers 200), with these (username, role, password) users; `prepare(stack)` runs
    after the migrations, before the servers start (to load data). Everything is stopped and removed afterwards;
    on failure the last lines of every log are printed."""
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="cim-stack-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o755)  # nginx's worker (another user) reads the static files
        https, http, web = free_port(), free_port(), free_port()
        base = f"https://localhost:{https}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cim.config.settings",
            "CIM_DATA_DIR": str(tmp / "data"),
            "CIM_DATABASE_URL": scratch_database(stack, postgres),
            "CIM_REDIS_URL": redis_url,
            "CIM_TASKS_BACKEND": "django_tasks_rq.RQBackend",
            "CIM_ALLOWED_HOSTS": "localhost,127.0.0.1",
            "CIM_CSRF_TRUSTED_ORIGINS": base,
            "CIM_HTTPS": "true",
            "CIM_DEBUG": "false",
            "CIM_BIND": f"127.0.0.1:{web}",
            "CIM_WEB_WORKERS": str(web_workers),
        }
        ready = Stack(base=base, http_port=http, cert=tmp / "cim.pem", env=env, tmp=tmp, exit_stack=stack)
        step("migrate, collect static files, create users")
        run(env, "migrate", "--no-input", "-v0")
        run(env, "collectstatic", "--no-input", "-v0")
        for username, role, password in users:
            run(env, "createuser", username, "--role", role, "--password", password)
        redis.Redis.from_url(redis_url).flushdb()
        if prepare:
            prepare(ready)

        step(f"start gunicorn ({web_workers} processes), {workers} workers on Redis, nginx with TLS")
        cert, key = certificate(tmp)
        web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")}
        start(stack, "gunicorn", [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy/gunicorn.conf.py")], web_env, tmp)
        for _ in range(workers):
            ready.start_worker()
        static = Path(env["CIM_DATA_DIR"]) / "static"
        conf = nginx_config(tmp, https=https, http=http, upstream=f"127.0.0.1:{web}", cert=cert, key=key, static=static)
        nginx = [NGINX, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")]
        subprocess.run([*nginx, "-t", "-q"], check=True)
        start(stack, "nginx", nginx, env, tmp)
        try:
            step(f"ready: {wait_ready(base, cert)['checks']}")
            yield ready
        except BaseException:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
            raise
