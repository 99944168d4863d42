"""Acquisition costs in a real browser: from the analytics page to the channel table, enter a month's cost in the
form, see the CAC and the charts, then remove the cost again."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_create
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def test_enter_a_cost_and_read_cac(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    for name, amount in (("林小雨", "300"), ("陈一", "500")):
        customer = make_customer(admin, display_name=name, source_channel="wechat")
        order_create(customer=customer, data=OrderInput(lines=[{"name": "茶", "unit_price": amount}]), actor=admin)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/analytics/")
    page.locator("#acquisition-link").click()
    page.wait_for_url(re.compile(r"/analytics/acquisition/$"))
    assert page.locator("tr[data-channel=wechat] td").nth(2).inner_text() == "—"  # no costs yet: no CAC

    month = f"{timezone.localdate():%Y-%m}"
    page.select_option("#id_channel", "wechat")
    page.fill("#id_month", month)
    page.fill("#id_amount", "1000")
    page.locator("#cost-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/analytics/acquisition/\?from="))
    cells = page.locator("tr[data-channel=wechat] td")
    assert [cells.nth(i).inner_text() for i in (0, 2, 3, 5)] == ["2", "500.00", "400.00", "0.8"]  # CAC, CLV, ratio
    assert page.locator("#acquisition-bars canvas").count() == 1
    assert page.locator("#acquisition-trend canvas").count() == 1
    page.screenshot(path=str(screenshots / "acquisition.png"), full_page=True)

    page.locator(f"tr[data-cost=wechat-{month}] button").click()
    expect(page.locator("tr[data-channel=wechat] td").nth(2)).to_have_text("—")  # the same address answers
    assert not errors
