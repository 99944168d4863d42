"""Customer feedback in a real browser: the analytics page links to it, both charts draw, and the newest
complaint leads to its ticket, which shows its sentiment."""

import pytest

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.analytics.sentiment import sentiment_refresh
from cim.customers.tests.factories import make_customer
from cim.service.services import ticket_create

pytestmark = pytest.mark.browser


def test_feedback_page_charts_and_the_way_to_a_complaint(page, live_server, transactional_db, screenshots):
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    customer = make_customer(admin, display_name="韩梅梅")
    ticket = ticket_create(
        customer=customer, subject="退款", description="申请退款两周了还没到账。", channel="phone", actor=admin
    )
    ticket_create(
        customer=customer, subject="感谢", description="客服很耐心，问题很快就解决了。", channel="web", actor=admin
    )
    sentiment_refresh()
    browser_log_in(page, live_server.url, "alice")

    page.goto(f"{live_server.url}/analytics/")
    page.locator("#feedback-link").click()
    page.wait_for_url(f"{live_server.url}/analytics/feedback/")
    page.locator("#shares-chart canvas").wait_for()
    page.locator("#topics-chart canvas").wait_for()
    assert "退款" in page.locator("#negative-keywords").inner_text()
    page.screenshot(path=screenshots / "feedback.png", full_page=True)

    page.locator("#latest-negative tbody a", has_text="退款").click()
    page.wait_for_url(f"{live_server.url}/service/tickets/{ticket.number}/")
    assert page.locator("#feedback-sentiment").get_attribute("data-label") == "negative"
