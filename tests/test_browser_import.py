"""The import journey in a real browser: upload an Excel-style GBK CSV, check the mapping, dry-run, import."""

import re

import pytest

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate

pytestmark = pytest.mark.browser


@pytest.fixture
def immediate_tasks(settings):
    """The wizard queues its work for `cim worker`; here the request runs it, so the page shows the result."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def test_upload_map_dry_run_and_import_a_gbk_csv(
    page, live_server, transactional_db, tmp_path, immediate_tasks, settings, screenshots
):
    settings.MEDIA_ROOT = tmp_path / "uploads"
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    browser_log_in(page, live_server.url, "alice")

    csv_file = tmp_path / "展会客户.csv"
    csv_file.write_bytes(
        "姓名,手机号码,邮箱,生日,备注\n司马光,138 0013 8000,SiMa@Example.com,1990年3月15日,展会\n,12,bad,x,\n".encode(
            "gb18030"
        )
    )
    page.locator("#nav-admin .dropdown-toggle").click()  # 管理
    page.get_by_role("link", name="导入").click()
    page.set_input_files("#id_file", str(csv_file))
    page.get_by_role("button", name="上传并映射列").click()
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    assert page.locator("#mapping select").nth(1).input_value() == "phones"  # 手机号码 → mobile phone
    assert page.get_by_text("司马光").count() >= 1  # the first values of each column are shown

    page.get_by_role("button", name="试运行").click()
    counts = page.locator(".import-counts").first
    counts.wait_for()
    assert counts.locator("[data-count=created]").inner_text() == "1"
    assert counts.locator("[data-count=rejected]").inner_text() == "1"
    page.screenshot(path=str(screenshots / "import-dry-run.png"), full_page=True)

    page.get_by_role("button", name="立即导入").click()
    page.locator("#import-state", has_text="已完成").wait_for()

    page.goto(f"{live_server.url}/?q=smg")
    page.locator("#results").get_by_text("司马光").wait_for()
    assert page.locator("#results").get_by_text("+8613800138000").count() == 1
