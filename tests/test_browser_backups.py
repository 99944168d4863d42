"""Backups in a real browser: an administrator sees the warning that no backup exists, backs up now, the worker
makes and verifies it, and the page shows it as the last good backup with the restore command — in Chinese."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from cim.accounts.services import user_create
from cim.accounts.testing import browser_log_in, totp_activate
from cim.backups.models import Backup
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.browser


def test_back_up_now_from_the_page(page, live_server, transactional_db, screenshots, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("CIM_BACKUP_KEY", raising=False)
    settings.DATA_DIR, settings.CIM_BACKUP_DIR, settings.MEDIA_ROOT = tmp_path, tmp_path / "b", tmp_path / "u"
    admin, _ = user_create(username="alice", role="administrator", password="Correct-Horse-42")
    totp_activate(admin)
    make_customer(admin, display_name="王芳")
    browser_log_in(page, live_server.url, "alice")

    page.locator("#nav-admin .dropdown-toggle").click()
    page.click("nav a[href='/backups/']")  # the label is translated after the merge
    # A click does not wait for the page it opens: expect() waits, is_visible() would look at the old page.
    expect(page.locator("#backup-stale")).to_be_visible()
    page.click("#backup-create")
    expect(page.locator("#messages .alert-success")).to_be_visible()

    call_command("worker", "--batch", "--no-periodic", verbosity=0)  # the background worker runs the queued backup
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.VERIFIED

    page.reload()
    assert page.locator("#backup-stale").count() == 0
    assert backup.file_name in page.locator("#last-verified").inner_text()
    assert f"cim restore {backup.pk}" in page.locator("pre").inner_text()
    page.screenshot(path=str(screenshots / "backups.png"), full_page=True)
