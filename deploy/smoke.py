"""`make prod-smoke`: the production stack of docs/deploy.md started on loopback and driven through a real journey.

PostgreSQL and Redis (already running on this machine), gunicorn with 2 processes behind Debian's nginx with a
self-signed certificate, and 2 `cim worker` processes on Redis. Chromium signs in over HTTPS, creates a customer,
imports a file (run by a worker process), searches and exports; every page must keep to the Content Security
Policy. Everything started is stopped and the scratch database dropped, also on failure.
"""

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from string import Template

import psycopg
import redis
import requests
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("CIM_SMOKE_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("CIM_SMOKE_REDIS", "redis://127.0.0.1:6379/13")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CHROMIUM = os.environ.get("CIM_CHROMIUM", "/usr/bin/chromium")
USER, PASSWORD = "smoke-manager", "Smoke-Test-Passphrase-2026"

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


def scratch_database(stack: ExitStack) -> str:
    name = f"cim_smoke_{os.getpid()}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack.callback(drop)
    return f"{POSTGRES}/{name}"


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


def journey(base: str, tmp: Path, csp_violations: list[str]) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        # The certificate is self-signed; TLS itself was checked against it with requests.
        context = browser.new_context(ignore_https_errors=True, locale="zh-CN", accept_downloads=True)
        page = context.new_page()
        page.on(
            "console",
            lambda message: "Content Security Policy" in message.text and csp_violations.append(message.text),
        )
        page.set_default_timeout(60_000)

        step("sign in over HTTPS")
        page.goto(f"{base}/login/")
        page.fill("#id_username", USER)
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")
        page.wait_for_url(f"{base}/")

        step("create a customer")
        page.goto(f"{base}/customers/new/")
        page.fill("#id_display_name", "欧阳明月")
        page.fill("[name='phones-0-number']", "139 0011 2233")
        page.locator("form[novalidate] button.btn-primary[type=submit]").click()
        page.wait_for_url(re.compile(r"/customers/C[\d-]+/$"))

        step("import a GBK CSV; a worker process on Redis runs it")
        upload = tmp / "展会客户.csv"
        rows = "姓名,手机号码,备注\n司马光,138 0013 8000,展会\n诸葛亮,139 1234 5678,展会\n"
        upload.write_bytes(rows.encode("gb18030"))
        page.goto(f"{base}/imports/")
        page.set_input_files("#id_file", str(upload))
        page.get_by_role("button", name="上传并映射列").click()
        page.wait_for_url(re.compile(r"/imports/\d+/$"))
        page.get_by_role("button", name="立即导入").click()
        page.locator("#import-state", has_text="已完成").wait_for(timeout=120_000)

        step("search")
        page.goto(f"{base}/?q=smg")
        page.locator("#results").get_by_text("司马光").wait_for()

        step("export")
        page.goto(f"{base}/")
        with page.expect_download() as download:
            page.get_by_role("button", name="导出").click()
            page.locator("[data-export-format=csv]").click()
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
        names = {cell for row in rows for cell in row}
        assert {"司马光", "诸葛亮"} <= names, f"the export lacks the imported customers: {rows[:3]}"
        browser.close()


def main() -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="cim-smoke-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o755)  # nginx's worker (another user) reads the static files
        https, http, web = free_port(), free_port(), free_port()
        base = f"https://localhost:{https}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cim.config.settings",
            "CIM_DATA_DIR": str(tmp / "data"),
            "CIM_DATABASE_URL": scratch_database(stack),
            "CIM_REDIS_URL": REDIS,
            "CIM_TASKS_BACKEND": "django_tasks_rq.RQBackend",
            "CIM_ALLOWED_HOSTS": "localhost,127.0.0.1",
            "CIM_CSRF_TRUSTED_ORIGINS": base,
            "CIM_HTTPS": "true",
            "CIM_DEBUG": "false",
            "CIM_BIND": f"127.0.0.1:{web}",
            "CIM_WEB_WORKERS": "2",
        }
        step("migrate, collect static files, create a user")
        run(env, "migrate", "--no-input", "-v0")
        run(env, "collectstatic", "--no-input", "-v0")
        run(env, "createuser", USER, "--role", "manager", "--password", PASSWORD)
        redis.Redis.from_url(REDIS).flushdb()

        step("start gunicorn (2 processes), 2 workers on Redis, nginx with TLS")
        cert, key = certificate(tmp)
        web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")}
        start(stack, "gunicorn", [str(BIN / "gunicorn"), "-c", str(ROOT / "deploy/gunicorn.conf.py")], web_env, tmp)
        worker_ports = [free_port(), free_port()]
        for port in worker_ports:
            command = [str(BIN / "cim"), "worker", "--metrics-listen", f"127.0.0.1:{port}"]
            start(stack, f"worker-{port}", command, env, tmp)
        static = Path(env["CIM_DATA_DIR"]) / "static"
        conf = nginx_config(tmp, https=https, http=http, upstream=f"127.0.0.1:{web}", cert=cert, key=key, static=static)
        nginx = [NGINX, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")]
        subprocess.run([*nginx, "-t", "-q"], check=True)
        start(stack, "nginx", nginx, env, tmp)
        try:
            ready = wait_ready(base, cert)
            step(f"ready: {ready['checks']}")

            health = requests.get(f"{base}/health", verify=cert, timeout=5)
            assert health.headers["Strict-Transport-Security"].startswith("max-age="), health.headers
            plain = requests.get(f"http://localhost:{http}/login/", allow_redirects=False, timeout=5)
            assert plain.status_code == 301 and plain.headers["Location"].startswith("https://"), plain.headers
            static_file = requests.get(f"{base}/static/core/cim.js", verify=cert, timeout=5)
            assert static_file.status_code == 200 and "max-age" in static_file.headers.get("Cache-Control", "")

            violations: list[str] = []
            journey(base, tmp, violations)
            assert not violations, f"pages broke the Content Security Policy: {violations[:3]}"

            token = (Path(env["CIM_DATA_DIR"]) / "metrics_token").read_text().strip()
            web_metrics = requests.get(
                f"{base}/metrics", verify=cert, timeout=10, headers={"Authorization": f"Bearer {token}"}
            ).text
            assert 'view="customers:list"' in web_metrics, "the web processes' request metrics are missing"
            imports = re.compile(r'cim_task_duration_seconds_count\{status="successful",task="[^"]*import[^"]*"\} 1')
            ran = [port for port in worker_ports if imports.search(requests.get(f"http://127.0.0.1:{port}").text)]
            assert len(ran) == 1, "exactly one worker process should report the import job"
        except BaseException:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
            raise
    print(f"prod-smoke passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
