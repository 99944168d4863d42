"""Collection forms in a real browser: an administrator builds one, a visitor fills it in on a phone and verifies
the SMS code, the administrator finds the new customer; and an English visitor meets the rate limit."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.ingest.collection import FormInput, collection_form_create, field_item

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[4] / "test-results"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls are in another.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def new_page(browser, locale: str, **options):
    context = browser.new_context(locale=locale, **options)
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def sms_outbox(settings, tmp_path):
    """Text messages go to a file; the live server runs in this process, so it sees these settings."""
    cache.clear()
    settings.CIM_SMS_BACKEND = "cim.ingest.sms.FileSmsSender"
    settings.CIM_SMS_FILE = tmp_path / "sms-outbox.jsonl"

    def last_code() -> str:
        lines = settings.CIM_SMS_FILE.read_text(encoding="utf-8").splitlines()
        return re.search(r"\b(\d{6})\b", json.loads(lines[-1])["text"]).group(1)

    yield last_code
    cache.clear()


def test_admin_builds_a_form_and_a_visitor_signs_up_with_an_sms_code(
    browser, live_server, transactional_db, sms_outbox
):
    alice, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(alice)
    admin = new_page(browser, "zh-CN", viewport={"width": 1280, "height": 900})
    browser_log_in(admin, live_server.url, "alice")

    admin.locator("#nav-admin .dropdown-toggle").click()  # 管理
    admin.get_by_role("link", name="设置").click()
    admin.get_by_role("link", name="表单").click()
    admin.get_by_role("link", name="新建表单").click()
    admin.fill("#id_name", "春季展会")
    admin.fill("#id_slug", "spring-fair")
    admin.fill("#id_title_zh", "春季展会登记")
    admin.fill("#id_title_en", "Spring fair sign-up")
    admin.fill("#id_consent_version", "2025-01")
    admin.fill("#id_consent_text_zh", "我同意接收活动与产品信息。")
    admin.fill("#id_consent_text_en", "I agree to receive news about events and products.")
    # Name and mobile phone are asked, and required, from the start; SMS verification is the default.
    assert admin.is_checked("[name=display_name_include]") and admin.is_checked("[name=phone_required]")
    admin.get_by_role("button", name="创建表单").click()
    admin.wait_for_url(re.compile(r"/settings/forms/\d+/$"))
    form_url = admin.url
    public_url = admin.locator("#public-url").inner_text()
    assert public_url == f"{live_server.url}/f/spring-fair/"
    assert "<iframe" in admin.locator("#embed-snippet").input_value()
    admin.screenshot(path=str(SCREENSHOTS / "form-builder.png"), full_page=True)

    visitor = new_page(browser, "zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    visitor.goto(public_url)
    assert visitor.locator("html").get_attribute("lang") == "zh-hans"
    assert visitor.get_by_role("heading", name="春季展会登记").is_visible()
    honeypot = visitor.locator("#id_website").bounding_box()
    assert honeypot["x"] + honeypot["width"] <= 0  # in the page for bots, off the screen for people
    visitor.get_by_label("姓名").fill("欧阳明月")
    visitor.get_by_label("手机号").fill("139 0011 2233")
    visitor.get_by_label("我同意接收活动与产品信息。").check()
    visitor.screenshot(path=str(SCREENSHOTS / "form-public-zh.png"), full_page=True)
    visitor.get_by_role("button", name="提交").click()
    visitor.wait_for_url(re.compile(r"/f/spring-fair/s/"))
    assert "•••• 2233" in visitor.locator("label[for=id_code]").inner_text()

    code = sms_outbox()
    visitor.fill("#id_code", "000000" if code != "000000" else "111111")
    visitor.get_by_role("button", name="验证", exact=True).click()
    assert "验证码不正确，您还可以再试 4 次。" in visitor.locator("#step-error").inner_text()
    visitor.fill("#id_code", code)
    visitor.get_by_role("button", name="验证", exact=True).click()
    visitor.locator("#thanks").wait_for()
    assert "谢谢！" in visitor.locator("#thanks").inner_text()
    visitor.screenshot(path=str(SCREENSHOTS / "form-confirmed-zh.png"), full_page=True)

    admin.goto(form_url)
    admin.get_by_role("link", name="1 条提交").click()
    admin.get_by_role("link", name="欧阳明月").click()
    admin.wait_for_url(re.compile(r"/customers/C\d{4}-\d{6}-\d/$"))
    assert admin.get_by_text("+8613900112233").count() >= 1


def test_an_english_visitor_gets_inline_errors_and_then_the_rate_limit(
    browser, live_server, transactional_db, sms_outbox, settings
):
    settings.CIM_FORM_RATE_PER_IP = "2/h"
    fields = [field_item("display_name", True), field_item("phone", True), field_item("company", False)]
    collection_form_create(
        data=FormInput(
            slug="fair",
            name="Fair",
            title_zh="展会登记",
            title_en="Fair sign-up",
            consent_purpose="events",
            consent_text_zh="我同意接收活动通知。",
            consent_text_en="I agree to hear about events.",
            consent_version="v1",
            fields=fields,
        ),
        actor=None,
    )
    visitor = new_page(browser, "en-US", viewport={"width": 390, "height": 844}, is_mobile=True)
    visitor.goto(f"{live_server.url}/f/fair/")
    assert visitor.locator("html").get_attribute("lang") == "en"
    assert visitor.get_by_role("heading", name="Fair sign-up").is_visible()

    visitor.get_by_role("button", name="Submit").click()  # submission 1: nothing filled in
    # The answer is a new page: wait for it rather than read the one being left.
    expect(visitor.get_by_text("This field is required.")).to_have_count(2)
    expect(visitor.get_by_text("Tick the box to give your consent")).to_be_visible()

    visitor.get_by_label("Name").fill("Ada Lovelace")
    visitor.get_by_label("Mobile phone").fill("+86 139 0011 4455")
    visitor.get_by_label("I agree to hear about events.").check()
    visitor.get_by_role("button", name="Submit").click()  # submission 2
    visitor.wait_for_url(re.compile(r"/f/fair/s/"))
    assert "Enter the 6-digit code" in visitor.locator("label[for=id_code]").inner_text()

    visitor.goto(f"{live_server.url}/f/fair/")
    visitor.get_by_label("Name").fill("Ada Lovelace")
    visitor.get_by_label("Mobile phone").fill("13900114456")
    visitor.get_by_label("I agree to hear about events.").check()
    with visitor.expect_response(re.compile(r"/f/fair/$")) as answer:
        visitor.get_by_role("button", name="Submit").click()  # submission 3: over the limit
    assert answer.value.status == 429
    assert "Too many submissions came from your network" in visitor.locator("#rate-limited").inner_text()

    visitor.get_by_role("link", name="简体中文").click()
    expect(visitor.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(visitor.get_by_role("heading", name="展会登记")).to_be_visible()
