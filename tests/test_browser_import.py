"""The import journey in a real browser: upload an Excel-style GBK CSV, check the mapping, dry-run, import."""

import re

import pytest
from playwright.sync_api import expect

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
    expect(page.locator("#encoding")).to_contain_text("文本按 GB18030 / GBK / GB2312 编码读取")

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


def test_import_a_call_log_exported_as_an_old_excel_file_in_english(
    page, live_server, transactional_db, tmp_path, immediate_tasks, settings
):
    """A manager imports a call centre's log (.xls, its title above the header) onto a customer's timeline."""
    import xlwt

    from cim.customers.tests.factories import make_customer

    settings.MEDIA_ROOT = tmp_path / "uploads"
    manager, _ = user_create(username="bob", role="manager", password="Correct-Horse-42")
    customer = make_customer(manager, display_name="Li Lei", phones=[{"number": "13812345678"}])
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("Calls")
    sheet.write(0, 0, "Call log, March 2026")
    for column, header in enumerate(["Call time", "Phone", "Direction", "Duration (s)", "Result", "Notes"]):
        sheet.write(1, column, header)
    for column, value in enumerate(["2026-03-01 10:00", 13812345678, "outbound", 125, "answered", "Asked for a quote"]):
        sheet.write(2, column, value)
    path = tmp_path / "calls.xls"
    workbook.save(str(path))
    browser_log_in(page, live_server.url, "bob")
    page.locator("button[name=language][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.goto(f"{live_server.url}/imports/")
    page.select_option("#id_kind", "interactions")
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Upload and map columns").click()
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    assert page.locator("#sheet").inner_text() == "Read from the sheet “Calls”."
    assert page.locator("#mapping select").nth(3).input_value() == "duration"
    page.get_by_role("button", name="Import now").click()
    page.locator("#import-state", has_text="Done").wait_for()
    assert page.locator(".import-counts [data-count=created]").first.inner_text() == "1"

    page.goto(f"{live_server.url}/customers/{customer.number}/")
    page.get_by_text("Asked for a quote").first.wait_for()
