"""Sharing in a real browser: a salesperson shares a customer with another team through the dialog on the customer
page, and a colleague in that team finds it in their list, marked as shared, and reads who shared it and why."""

import pytest

from cim.accounts.models import Team
from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in
from cim.customers.models import Share
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_create

pytestmark = pytest.mark.browser


def test_share_a_customer_with_another_team(page, live_server, transactional_db, screenshots):
    east, north = Team.objects.create(name="华东销售部"), Team.objects.create(name="华北服务部")
    owner, _ = user_create(username="zhao", role="sales", password="Correct-Horse-42", team=east)
    user_create(username="qian", role="service", password="Correct-Horse-42", team=north)
    customer = customer_create(
        data=CustomerInput(display_name="欧阳明月", owner_id=owner.pk, emails=[{"address": "mingyue@example.com"}]),
        actor=owner,
    )

    browser_log_in(page, live_server.url, "zhao")
    page.goto(f"{live_server.url}/customers/{customer.number}/")
    page.locator("[data-share-open]").click()
    form = page.locator("[data-share-form]")
    form.wait_for()
    form.locator("select[name=team]").select_option(label="华北服务部")
    form.locator("textarea[name=reason]").fill("华北客户服务跟进")
    form.locator("button[type=submit]").click()
    page.locator("[data-share-given]").get_by_text("华北服务部").wait_for()
    page.screenshot(path=str(screenshots / "sharing-dialog.png"), full_page=True)
    assert Share.objects.get().team == north

    page.context.clear_cookies()
    browser_log_in(page, live_server.url, "qian")
    page.goto(f"{live_server.url}/?shared=1")
    row = page.locator("tr", has=page.locator("[data-share-mark]"))
    row.get_by_text("欧阳明月").click()
    banner = page.locator("[data-share-received]")
    banner.wait_for()
    assert "zhao" in banner.inner_text() and "华北客户服务跟进" in banner.inner_text()
    assert page.get_by_text("m***@example.com").count() == 1  # a service agent sees emails masked, shared or not
    assert page.locator(f"a[href='/customers/{customer.number}/edit/']").count() == 0
    page.screenshot(path=str(screenshots / "sharing-recipient.png"), full_page=True)
