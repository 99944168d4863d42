"""The care calendar in a real browser, in Chinese: February 2026 with the Spring Festival, its statutory holiday
and make-up workdays, a customer's birthday; filter by owner, open the customer and record a gift on the card."""

import pytest
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.automation.models import Gift
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def test_the_care_calendar_and_a_gift(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    seller, _ = user_create(username="bob", role="sales", password="Correct-Horse-42")
    fang = make_customer(admin, display_name="王芳", birthday="1990-02-17", owner_id=seller.pk)
    make_customer(admin, display_name="李雷", birthday="1988-02-17", owner_id=admin.pk)
    browser_log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/care/?month=2026-02")
    expect(page.locator("[data-testid=care-month]")).to_have_text("2026-02")
    spring = page.locator('td[data-day="2026-02-17"]')
    expect(spring.locator('[data-festival="spring_festival"]')).to_have_text("春节")
    expect(spring.locator('[data-statutory="holiday"]')).to_be_visible()
    expect(page.locator('td[data-day="2026-02-14"] [data-statutory="makeup_workday"]')).to_have_text("调休上班")
    expect(page.locator('td[data-day="2026-02-16"] [data-festival="new_years_eve"]')).to_be_visible()
    expect(spring.locator('[data-kind="birthday"]')).to_contain_text("王芳")
    expect(spring.locator('[data-kind="birthday"]')).to_contain_text("李雷")
    page.screenshot(path=screenshots / "care-calendar-zh.png", full_page=True)

    page.select_option("#care-owner", str(seller.pk))
    page.locator("form[method=get] button[type=submit]").click()
    spring = page.locator('td[data-day="2026-02-17"]')
    expect(spring.locator('[data-kind="birthday"]')).to_contain_text("王芳")
    expect(spring.locator('[data-kind="birthday"]')).not_to_contain_text("李雷")

    spring.get_by_role("link", name="王芳").click()
    card = page.locator("#care-gifts")
    expect(card.locator("input[name=description]")).to_be_visible()
    card.locator("input[name=description]").fill("新春礼盒")
    card.locator("input[name=value]").fill("388")
    card.locator("select[name=occasion]").select_option("spring_festival")
    card.locator("input[name=given_on]").fill("2026-02-16")
    card.locator("button[type=submit]").click()
    expect(page.locator("#care-gifts")).to_contain_text("新春礼盒")
    assert Gift.objects.get().customer_id == fang.pk
