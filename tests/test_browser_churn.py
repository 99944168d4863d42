"""The at-risk list in a real browser: a salesperson finds their lapsed customer, most at stake first, with the
reason, narrows the list to their own customers and opens the customer page's churn card."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_create
from cim.analytics.churn import churn_refresh
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def test_salesperson_sees_their_customers_at_risk_and_why(page, live_server, transactional_db, settings, screenshots):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    seller, _ = user_create(username="bob", role="sales", password="Correct-Horse-42")
    lapsed = make_customer(admin, display_name="王老顾客", owner_id=seller.pk)
    others = make_customer(admin, display_name="别人的客户")
    for customer in (lapsed, others):
        for i in range(12):
            order_create(
                customer=customer,
                data=OrderInput(
                    ordered_at=timezone.now() - timedelta(days=150 + 30 * i),
                    lines=[{"name": "茶", "unit_price": "300"}],
                ),
                actor=admin,
            )
    churn_refresh()

    browser_log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/analytics/churn/")
    rows = page.locator("#churn-table tbody tr[data-customer]")
    assert rows.count() == 1  # only his own customer, not the administrator's
    assert "王老顾客" in rows.first.inner_text()
    assert "150" in rows.first.inner_text() and "30" in rows.first.inner_text()
    page.locator("label[for=mine]").click()
    page.locator("#churn-filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"mine=1"))
    assert page.locator("#churn-table tbody tr[data-customer]").count() == 1
    page.screenshot(path=screenshots / "churn-list.png", full_page=True)
    page.locator("#churn-table tbody tr[data-customer] a").first.click()
    page.wait_for_url(re.compile(re.escape(f"/customers/{lapsed.number}/")))
    card = page.locator("#churn-risk").inner_text()
    assert "72%" in card and "150" in card
