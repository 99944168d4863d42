"""The main journey in a real browser: Playwright driving Debian's Chromium against a live server."""

import re

import pytest
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import totp_code

pytestmark = pytest.mark.browser


def test_log_in_create_find_by_initials_edit_and_switch_language(page, live_server, transactional_db, screenshots):
    user_create(username="alice", role="administrator", password="Correct-Horse-42")
    page.goto(f"{live_server.url}/login/", timeout=60_000)  # a fresh server's first page, on a busy machine
    assert page.locator("html").get_attribute("lang") == "zh-hans"  # follows the browser's language
    page.fill("#id_login", "alice")
    page.fill("#id_password", "Correct-Horse-42")
    page.press("#id_password", "Enter")
    # An administrator without an authenticator app sets one up before anything else, as a person would:
    # the app is given the secret shown under the QR code and answers with the current code.
    page.wait_for_url(f"{live_server.url}/2fa/totp/activate/", timeout=60_000)
    secret = page.locator("#authenticator_secret").input_value()
    page.fill("#id_code", totp_code(secret))
    page.screenshot(path=str(screenshots / "mfa-activate.png"), full_page=True)
    page.press("#id_code", "Enter")
    page.wait_for_url(f"{live_server.url}/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    page.screenshot(path=str(screenshots / "mfa-recovery-codes.png"), full_page=True)

    page.goto(f"{live_server.url}/customers/new/")
    page.fill("#id_display_name", "欧阳明月")
    page.fill("[name='phones-0-number']", "139 0011 2233")
    page.fill("[name='emails-0-address']", "MingYue@Example.COM")
    page.locator("form[novalidate] button.btn-primary[type=submit]").click()
    page.wait_for_url(re.compile(r"/customers/C\d{4}-\d{6}-\d/$"))
    number = page.url.rstrip("/").rsplit("/", 1)[1]
    assert page.get_by_text("+8613900112233").count() >= 1
    assert page.get_by_text("mingyue@example.com").count() >= 1

    page.goto(f"{live_server.url}/")
    page.fill("#q", "oymy")
    page.locator("#results").get_by_text("欧阳明月").wait_for()
    page.screenshot(path=str(screenshots / "list-search-initials.png"), full_page=True)
    page.locator("#results").get_by_text("欧阳明月").click()
    page.wait_for_url(f"{live_server.url}/customers/{number}/")

    page.goto(f"{live_server.url}/customers/{number}/edit/")
    page.fill("#id_alias", "小月")
    page.locator("form[novalidate] button.btn-primary[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/customers/{number}/")
    assert page.get_by_text("小月").count() >= 1
    page.screenshot(path=str(screenshots / "customer-360.png"), full_page=True)

    page.locator("button[name=language][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")  # waits for the page the click opens
    assert page.get_by_role("link", name="New customer").count() == 1
    page.locator("button[name=language][value=zh-hans]").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    assert page.get_by_role("link", name="新建客户").count() == 1
