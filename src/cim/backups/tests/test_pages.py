"""The backups page and API for every role, the buttons queueing work for the worker, and `cim check --deploy`."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from cim.accounts.roles import Role
from cim.backups.models import Backup


def _login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _backup(hours_ago: float = 1, status=Backup.Status.VERIFIED) -> Backup:
    created = timezone.now() - timedelta(hours=hours_ago)
    return Backup.objects.create(
        file_name=f"cim-{created:%Y%m%dT%H%M%S%f}-daily.cimbak",
        kind=Backup.Kind.DAILY,
        engine="sqlite",
        created_at=created,
        verified_at=created if status == Backup.Status.VERIFIED else None,
        status=status,
        row_counts={"customers_customer": 1000},
        size=12345,
    )


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.django_db
def test_page_for_every_role(users, role, backup_settings):
    backup = _backup()
    client = _login(users[role])
    page = client.get("/backups/")
    create = client.post("/backups/create/")
    verify = client.post(f"/backups/{backup.pk}/verify/")
    if role == Role.ADMINISTRATOR:
        assert page.status_code == 200
        html = page.content.decode()
        assert backup.file_name in html and "cim restore" in html and 'id="backup-stale"' not in html
        assert create.status_code == 302 and verify.status_code == 302
        names = set(DBTaskResult.objects.values_list("task_path", flat=True))
        assert names == {"cim.backups.tasks.backup_create_run", "cim.backups.tasks.backup_verify_run"}
    else:
        assert (page.status_code, create.status_code, verify.status_code) == (403, 403, 403)
        assert not DBTaskResult.objects.exists()
        assert "/backups/" not in client.get("/customers/").content.decode()


@pytest.mark.django_db
def test_page_warns_when_the_last_backup_is_old(admin_user, backup_settings):
    client = _login(admin_user)
    assert 'id="backup-stale"' in client.get("/backups/").content.decode()  # none at all
    _backup(hours_ago=30)
    html = client.get("/backups/").content.decode()
    assert 'id="backup-stale"' in html and "26 hours" in html
    _backup(hours_ago=2)
    assert 'id="backup-stale"' not in client.get("/backups/").content.decode()
    assert client.get("/backups/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200


@pytest.mark.django_db
def test_api_lists_and_queues(admin_user, api_client, backup_settings):
    old = _backup(hours_ago=30)
    client = api_client(admin_user)
    body = client.get("/api/v1/backups").json()
    assert body["stale"] is True and body["last_verified"]["id"] == old.pk
    assert [b["id"] for b in body["backups"]] == [old.pk]
    queued = client.post("/api/v1/backups", data={"verify": False}, content_type="application/json")
    assert queued.status_code == 202
    task = DBTaskResult.objects.get()
    assert task.task_path == "cim.backups.tasks.backup_create_run" and task.args_kwargs["kwargs"]["verify"] is False
    assert client.post(f"/api/v1/backups/{old.pk}/verify").status_code == 202
    missing = client.post("/api/v1/backups/99999/verify")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_cim_check_deploy(backup_settings, monkeypatch, capsys):
    backup_settings.DEBUG = False
    backup_settings.ALLOWED_HOSTS = ["crm.example.com"]
    with pytest.raises(CommandError):
        call_command("check", "--deploy", "--tag", "cim")
    err = capsys.readouterr().err
    assert "cim.E010" in err and "cim.E012" in err  # no key, no backup

    monkeypatch.setenv("CIM_BACKUP_KEY", "a-long-random-key-for-the-test")
    _backup(hours_ago=40)
    with pytest.raises(CommandError):
        call_command("check", "--deploy", "--tag", "cim")
    err = capsys.readouterr().err
    assert "cim.E013" in err and "cim.E010" not in err

    _backup(hours_ago=1)
    call_command("check", "--deploy", "--tag", "cim")
    assert "Checks passed." in capsys.readouterr().out

    backup_settings.DEBUG = True
    backup_settings.ALLOWED_HOSTS = []
    backup_settings.SECRET_KEY = "django-insecure-short"
    with pytest.raises(CommandError):
        call_command("check", "--deploy", "--tag", "cim")
    err = capsys.readouterr().err
    assert "cim.E001" in err and "cim.E002" in err and "cim.E003" in err
