"""The dashboard in a real browser: first in the menu, its charts drawn, the filters applied, and a scheduled report
created from its page."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_create
from cim.analytics.models import ReportSchedule
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def test_dashboard_charts_filters_and_a_schedule(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    for name, channel, days in (("林小雨", "wechat", (40, 5)), ("陈一", "website", (3,))):
        customer = make_customer(admin, display_name=name, source_channel=channel)
        for ago in days:
            data = OrderInput(
                ordered_at=timezone.now() - timedelta(days=ago), lines=[{"name": "茶", "unit_price": "100"}]
            )
            order_create(customer=customer, data=data, actor=admin)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_log_in(page, live_server.url, "alice")

    page.locator("#main-nav .nav-link").first.click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    assert page.locator("[data-kpi=active] .fs-5").inner_text() == "2"
    for chart in ("#chart-trend", "#chart-channels", "#chart-cohorts"):
        assert page.locator(f"{chart} canvas").count() >= 1, chart
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

    page.select_option("#f-channel", "website")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"channel=website"))
    assert page.locator("[data-kpi=active] .fs-5").inner_text() == "1"

    page.goto(f"{live_server.url}/analytics/reports/")
    page.fill("#id_name", "每周看板")
    page.select_option("#id_frequency", "weekly")
    page.fill("#id_recipients", "boss@example.com")
    page.locator("#schedule-form button[type=submit]").click()
    expect(page.locator("#schedules")).to_contain_text("每周看板")  # the same address answers
    assert ReportSchedule.objects.get().recipients == ["boss@example.com"]
    assert not errors
