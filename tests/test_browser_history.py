"""The customer's history in a real browser: log an interaction in two clicks, record an order and refund part of
it, follow the timeline's paging and filter, and handle a ticket — in Chinese, then the same page in English."""

import re

import pytest
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.activities.history_schemas import InteractionInput
from cim.activities.interactions import interaction_log
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def log_in(page, live_server, username):
    browser_log_in(page, live_server.url, username)


def test_interaction_order_refund_timeline_and_ticket(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    customer = make_customer(admin, display_name="林小雨", emails=[{"address": "xiaoyu@example.com"}])
    for i in range(31):
        interaction_log(customer=customer, data=InteractionInput(kind="note", subject=f"旧记录{i}"), actor=admin)
    log_in(page, live_server, "alice")
    url = f"{live_server.url}/customers/{customer.number}/"

    # Two clicks: choose WeChat, type, log.
    page.goto(url)
    page.locator("label[for=ql-wechat]").click()
    page.fill("#ql-body", "客户问中秋礼盒的价格")
    page.locator("#quick-log button[type=submit]").click()
    # The answer is the same address: wait for the new entry, not for the address.
    expect(page.locator("#timeline-entries > li").first).to_contain_text("微信")

    # An order of two lines, then a partial refund: the net amount is on the order and on the customer page.
    page.goto(f"{live_server.url}/activities/customers/{customer.number}/orders/new/")
    page.fill("[name=lines-0-name]", "中秋茶礼盒")
    page.fill("[name=lines-0-quantity]", "2")
    page.fill("[name=lines-0-unit_price]", "588")
    page.fill("[name=lines-1-name]", "茶杯")
    page.fill("[name=lines-1-unit_price]", "88")
    page.locator("form button.btn-primary[type=submit]").click()
    page.wait_for_url(re.compile(r"/activities/orders/\d+/$"))
    page.fill("#id_amount", "100")
    page.fill("#id_reason", "茶杯破损")
    page.locator("form[action$='/refund/'] button[type=submit]").click()
    expect(page.locator("h1")).to_contain_text("部分退款")  # the same address answers: wait for the new page
    assert re.search(r"净额\s+CNY 1,?164\.00", page.locator("body").inner_text())  # 2 × 588 + 88 − 100
    page.goto(url)
    assert re.search(r"1,?164\.00", page.locator("#purchases").inner_text())

    # The timeline: 30 entries, older ones appended in place, then only orders and refunds.
    assert page.locator("#timeline-entries > li[data-kind]").count() == 30
    page.locator("#timeline-more a").click()
    page.locator("#timeline-entries > li[data-kind]").nth(30).wait_for()
    page.locator("#tl-order").check()
    page.locator("#tl-refund").check()
    expect(page.locator("#timeline-entries > li[data-kind=interaction]")).to_have_count(0)
    # Each box reloads the feed: wait for the second reload too, not just the first.
    expect(page.locator("#timeline-entries > li[data-kind=refund]")).to_have_count(1)
    kinds = page.locator("#timeline-entries > li[data-kind]").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds == ["refund", "order"]
    page.screenshot(path=str(screenshots / "customer-timeline.png"), full_page=True)

    # A complaint from the customer page, answered: the first-response clock shows as met.
    page.goto(url)
    page.locator("#service-panel a.btn").click()
    page.fill("#id_subject", "茶杯有裂纹")
    page.locator("form button.btn-primary[type=submit]").first.click()
    page.wait_for_url(lambda address: "/service/tickets/" in address and "/new/" not in address)
    assert "茶杯有裂纹" in page.content()

    page.locator("button[name=language][value=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(url)
    assert page.locator("#purchases").get_by_text("Total spent").count() == 1
    assert page.get_by_role("link", name="Orders").count() >= 1
