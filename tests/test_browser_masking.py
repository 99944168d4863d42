"""Masked data in a real browser: a service agent sees an email masked and reveals it in place (audited)."""

import pytest

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in
from cim.audit.models import AuditEvent
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_create

pytestmark = pytest.mark.browser


def test_service_reveals_a_masked_email(page, live_server, transactional_db, screenshots):
    agent, _ = user_create(username="lin", role="service", password="Correct-Horse-42")
    customer = customer_create(
        data=CustomerInput(
            display_name="欧阳明月", owner_id=agent.pk, emails=[{"address": "mingyue@example.com"}], phones=[]
        ),
        actor=None,
    )
    browser_log_in(page, live_server.url, "lin")

    page.goto(f"{live_server.url}/customers/{customer.number}/")
    assert page.get_by_text("m***@example.com").count() == 1
    assert page.get_by_text("mingyue@example.com").count() == 0
    page.locator("[data-reveal='email.address']").click()
    page.locator("[data-revealed='email.address']").get_by_text("mingyue@example.com").wait_for()
    page.screenshot(path=str(screenshots / "customer-reveal.png"), full_page=True)
    assert AuditEvent.objects.filter(action="customer.reveal", actor=agent, fields=["email.address"]).exists()
