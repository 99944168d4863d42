"""Accounts in a real browser: a colleague logs in with the password alone, creates an API token and revokes it."""

import pytest

from cim.accounts.models import ApiToken
from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in

pytestmark = pytest.mark.browser


def test_create_an_api_token_see_it_once_and_revoke_it(page, live_server, transactional_db, screenshots):
    user, _ = user_create(username="bob", role="sales", password="Correct-Horse-42")
    browser_log_in(page, live_server.url, "bob")
    page.goto(f"{live_server.url}/account/tokens/")
    page.fill("#id_name", "ERP")
    page.select_option("#id_scope", "read")
    page.fill("#id_days", "30")
    page.locator("#token-create button[type=submit]").click()
    secret = page.locator("#new-token input").input_value()
    assert secret.startswith("cim_")
    page.screenshot(path=str(screenshots / "api-tokens.png"), full_page=True)
    token = ApiToken.objects.get(user=user)
    assert token.name == "ERP" and token.scope == "read"

    page.goto(f"{live_server.url}/account/tokens/")
    assert page.locator("#new-token").count() == 0  # shown once
    page.locator("form[action$='/revoke/'] button").click()
    page.locator("form[action$='/revoke/']").wait_for(state="detached")
    token.refresh_from_db()
    assert token.revoked_at is not None
