"""`make prod-smoke`: the production stack of docs/deploy.md started on loopback and driven through a real journey.

PostgreSQL and Redis (already running on this machine), gunicorn with 2 processes behind Debian's nginx with a
self-signed certificate, and 2 `cim worker` processes on Redis (deploy/stack.py). Chromium signs in over HTTPS,
creates a customer, imports a file (run by a worker process), searches and exports; every page must keep to the
Content Security Policy. Everything started is stopped and the scratch database dropped, also on failure.
"""

import csv
import io
import os
import re
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright
from stack import production_stack, step

CHROMIUM = os.environ.get("CIM_CHROMIUM", "/usr/bin/chromium")
USER, PASSWORD = "smoke-manager", "Smoke-Test-Passphrase-2026"


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
        page.fill("#id_login", USER)
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
    with production_stack(users=[(USER, "manager", PASSWORD)]) as stack:
        health = requests.get(f"{stack.base}/health", verify=stack.cert, timeout=5)
        assert health.headers["Strict-Transport-Security"].startswith("max-age="), health.headers
        plain = requests.get(f"http://localhost:{stack.http_port}/login/", allow_redirects=False, timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://"), plain.headers
        static_file = requests.get(f"{stack.base}/static/core/cim.js", verify=stack.cert, timeout=5)
        assert static_file.status_code == 200 and "max-age" in static_file.headers.get("Cache-Control", "")

        violations: list[str] = []
        journey(stack.base, stack.tmp, violations)
        assert not violations, f"pages broke the Content Security Policy: {violations[:3]}"

        token = (Path(stack.env["CIM_DATA_DIR"]) / "metrics_token").read_text().strip()
        web_metrics = requests.get(
            f"{stack.base}/metrics", verify=stack.cert, timeout=10, headers={"Authorization": f"Bearer {token}"}
        ).text
        assert 'view="customers:list"' in web_metrics, "the web processes' request metrics are missing"
        imports = re.compile(r'cim_task_duration_seconds_count\{status="successful",task="[^"]*import[^"]*"\} 1')
        ran = [port for port in stack.worker_ports if imports.search(requests.get(f"http://127.0.0.1:{port}").text)]
        assert len(ran) == 1, "exactly one worker process should report the import job"
    print(f"prod-smoke passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
