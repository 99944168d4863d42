"""The auditor's journey in a real browser: a failed and a good login, the audit page, a filter, verify the chain."""

import pytest
from django.db import connection
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in
from cim.audit.models import AuditEvent

pytestmark = pytest.mark.browser


def test_auditor_filters_the_log_and_verifies_the_chain(page, live_server, transactional_db, screenshots):
    user_create(username="shenji", role="auditor", password="Correct-Horse-42")
    page.goto(f"{live_server.url}/login/", timeout=60_000)
    page.fill("#id_login", "shenji")
    page.fill("#id_password", "wrong-password")
    page.press("#id_password", "Enter")
    expect(page.locator(".alert-danger")).to_be_visible()  # refused before the next login starts
    browser_log_in(page, live_server.url, "shenji")

    page.locator("#nav-admin .dropdown-toggle").click()  # 管理
    page.get_by_role("link", name="审计").click()
    page.wait_for_url(f"{live_server.url}/audit/")
    assert page.locator("#audit-results tbody tr").count() >= 3  # user created, failed login, login
    page.fill("#f-action", "auth.")
    page.locator("#audit-filters button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/audit/?*action=auth.*")
    rows = page.locator("#audit-results tbody tr")
    assert rows.count() == 2
    assert "auth.login_failed" in rows.nth(1).inner_text() and "wrong-password" not in page.content()

    page.locator("#audit-verify").click()
    page.locator("[data-verified=ok]").wait_for()
    page.screenshot(path=str(screenshots / "audit-verified.png"), full_page=True)

    victim = AuditEvent.objects.get(action="auth.login")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET note = 'ip=10.0.0.1' WHERE id = %s", [victim.pk])
    page.locator("#audit-verify").click()
    page.locator("[data-verified=changed]").wait_for()
    assert f"{victim.seq}" in page.locator("#audit-verification").inner_text()
