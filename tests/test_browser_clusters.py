"""Clusters and bought-together rules in a real browser: an analyst reads the clusters and their chart, opens the
customers of one cluster, reads the rules, and sees a customer's recommended products."""

import re

import pytest

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.activities.history_schemas import OrderInput, ProductInput
from cim.activities.orders import order_create, product_save
from cim.analytics.basket import rules_refresh
from cim.analytics.clusters import clusters_refresh
from cim.analytics.models import CustomerScore
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser
BASKETS = [("TEA", "CUP"), ("TEA", "CUP", "POT"), ("TEA", "POT"), ("CUP",), ("TEA", "CUP"), ("TEA",)]


def test_analyst_reads_clusters_and_rules_and_a_customers_recommendations(
    page, live_server, transactional_db, screenshots
):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    user_create(username="ann", role="analyst", password="Correct-Horse-42")
    for sku, name in (("TEA", "龙井"), ("CUP", "茶杯"), ("POT", "紫砂壶")):
        product_save(data=ProductInput(sku=sku, name=name, category="茶", price=100), actor=admin)
    customers = []
    for i, skus in enumerate(BASKETS):
        customers.append(make_customer(admin, display_name=f"顾客{i}"))
        for _repeat in range(1 + 3 * (i % 2)):  # every other customer buys four times
            order_create(customer=customers[-1], data=OrderInput(lines=[{"sku": sku} for sku in skus]), actor=admin)
    clusters_refresh(k=2)
    rules_refresh(min_support=0.3, min_confidence=0.4)

    browser_log_in(page, live_server.url, "ann")
    page.goto(f"{live_server.url}/analytics/")
    page.locator("#clusters-link").click()
    page.wait_for_url(re.compile(r"/analytics/clusters/$"))
    assert page.locator("#clusters tbody tr[data-cluster]").count() == 2
    page.locator("#cluster-chart canvas").first.wait_for()
    page.screenshot(path=screenshots / "clusters.png", full_page=True)
    page.locator("#clusters tr[data-cluster='1'] a").click()
    page.wait_for_url(re.compile(r"cluster=1"))
    expected = set(CustomerScore.objects.filter(cluster=1).values_list("customer__display_name", flat=True))
    shown = page.locator("#results").inner_text()
    assert expected and all(name in shown for name in expected)

    page.goto(f"{live_server.url}/analytics/rules/")
    rules = page.locator("#rules tbody tr")
    assert rules.count() >= 1 and "紫砂壶" in page.locator("#rules").inner_text()

    # 顾客5 bought only 龙井: 紫砂壶 is bought with it (lift above 1).
    page.goto(f"{live_server.url}/customers/{customers[5].number}/")
    card = page.locator("#recommendations").inner_text()
    assert "紫砂壶" in card and "龙井" in card
