"""Privacy in a real browser: record a consent on the customer page, see the ledger, erase the customer with the
typed confirmation, then find an overdue request in the register."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.customers.tests.factories import make_customer
from cim.privacy.models import Consent
from cim.privacy.requests import request_create

pytestmark = pytest.mark.browser


def log_in(page, live_server, username):
    browser_log_in(page, live_server.url, username)


def test_consent_erasure_and_the_request_register(page, live_server, transactional_db, screenshots, settings, tmp_path):
    settings.CIM_TOMBSTONE_FILE = tmp_path / "tombstones.jsonl"
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    customer = make_customer(admin, display_name="甄喵测试", phones=[{"number": "13912349876"}])
    request_create(
        customer=customer, kind="access", received_at=timezone.now() - datetime.timedelta(days=45), actor=admin
    )
    log_in(page, live_server, "alice")

    page.goto(f"{live_server.url}/customers/{customer.number}/")
    page.locator("details:has(#consent-form) > summary").click()
    form = page.locator("#consent-form")
    form.locator("#id_purpose").select_option("sensitive")
    form.locator("#id_text").fill("我同意处理我的敏感个人信息")
    form.locator("#id_text_version").fill("2026-12")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/customers/{customer.number}/#privacy")
    assert Consent.objects.get().purpose == "sensitive"
    assert page.locator('#privacy tr[data-purpose="sensitive"] .badge.text-bg-success').count() == 1
    page.screenshot(path=screenshots / "privacy-customer-card.png", full_page=True)

    page.click("#erase-link")
    page.fill("#id_reason", "本人要求删除")
    page.fill("#id_confirm", "WRONG")
    page.click("#erase-form button[type=submit]")
    expect(page.locator("#erase-form .invalid-feedback").first).to_be_visible()  # waits for the answer
    page.fill("#id_confirm", customer.number)
    page.click("#erase-form button[type=submit]")
    page.wait_for_url(f"**/customers/{customer.number}/")
    assert "甄喵测试" not in page.locator("h1").inner_text()
    customer.refresh_from_db()
    assert "甄喵测试" not in customer.display_name

    page.goto(f"{live_server.url}/privacy/")
    assert page.locator("#overdue-alert").is_visible()
    assert page.locator("tr.table-danger").count() == 1
    page.screenshot(path=screenshots / "privacy-register.png", full_page=True)
