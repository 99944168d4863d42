"""Create → verify → restore on the test database's engine (SQLite, or PostgreSQL with CIM_DATABASE_URL), a
changed file failing verification, restore refusing without confirmation, retention, and the schedule."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from cim.audit.models import AuditEvent
from cim.backups.archive import KEY_FILE
from cim.backups.models import Backup
from cim.backups.services import backup_create, backup_prune, backup_verify, scheduled_kind
from cim.core.schedule import PERIODIC
from cim.core.signals import database_restored
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db(transaction=True)


def _customers(admin_user, count: int) -> None:
    for index in range(count):
        make_customer(admin_user, display_name=f"备份客户{index}")


def test_round_trip_create_verify_restore(backup_settings, admin_user, capsys):
    _customers(admin_user, 5)
    upload = Path(backup_settings.MEDIA_ROOT) / "attachments" / "note.txt"
    upload.parent.mkdir(parents=True)
    upload.write_text("原件")

    backup = backup_create(actor=admin_user)
    assert backup.status == Backup.Status.CREATED
    assert backup.engine == ("sqlite" if connection.vendor == "sqlite" else "postgresql")
    assert backup.row_counts["customers_customer"] == 5 and backup.uploads == 1
    assert (
        len(backup.sha256) == 64 and backup.size == (backup_settings.CIM_BACKUP_DIR / backup.file_name).stat().st_size
    )
    assert (backup_settings.CIM_BACKUP_DIR / backup.file_name.replace(".cimbak", ".json")).exists()
    assert (backup_settings.DATA_DIR / KEY_FILE).exists()  # generated on first use
    assert b"\xe5\xa4\x87\xe4\xbb\xbd" not in (backup_settings.CIM_BACKUP_DIR / backup.file_name).read_bytes()

    call_command("backup", "verify", "--latest")
    backup.refresh_from_db()
    assert backup.status == Backup.Status.VERIFIED and backup.verified_at is not None

    # Changes after the backup: one customer more, one fewer, the upload edited.
    _customers(admin_user, 2)
    Customer.objects.filter(pk=Customer.objects.order_by("pk").first().pk).delete()
    upload.write_text("改过")
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    database_restored.connect(listener)
    try:
        call_command("restore", str(backup.pk), "--yes")
    finally:
        database_restored.disconnect(listener)

    assert Customer.objects.count() == 5
    assert set(Customer.objects.values_list("display_name", flat=True)) == {f"备份客户{i}" for i in range(5)}
    assert upload.read_text() == "原件"
    restored = Backup.objects.get(file_name=backup.file_name)
    assert restored.status == Backup.Status.VERIFIED  # from the manifest: the snapshot still said "running"
    assert AuditEvent.objects.filter(action="backup.restore").exists()
    (event,) = received
    assert event["taken_at"] == backup.created_at and event["backup"] == restored
    assert event["manifest"]["row_counts"]["customers_customer"] == 5
    assert "Restored" in capsys.readouterr().out


def test_changed_file_fails_verification(backup_settings, admin_user):
    _customers(admin_user, 2)
    backup = backup_create(actor=admin_user)
    path = backup_settings.CIM_BACKUP_DIR / backup.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    assert backup_verify(backup=backup).status == Backup.Status.FAILED
    assert "SHA-256" in backup.error

    # Even with the catalog's checksum matching the changed file, decryption refuses it.
    from cim.backups.archive import file_sha256

    Backup.objects.filter(pk=backup.pk).update(sha256=file_sha256(path))
    backup.refresh_from_db()
    assert backup_verify(backup=backup).status == Backup.Status.FAILED
    assert "authentication" in backup.error
    with pytest.raises(CommandError):
        call_command("backup", "verify", str(backup.pk))


def test_truncated_file_or_other_key_fails(backup_settings, admin_user, monkeypatch):
    backup = backup_create(actor=admin_user)
    path = backup_settings.CIM_BACKUP_DIR / backup.file_name
    path.write_bytes(path.read_bytes()[:-100])
    Backup.objects.filter(pk=backup.pk).update(sha256="")
    backup.refresh_from_db()
    assert backup_verify(backup=backup).status == Backup.Status.FAILED

    other = backup_create(actor=admin_user)
    monkeypatch.setenv("CIM_BACKUP_KEY", "another key entirely")
    assert backup_verify(backup=other).status == Backup.Status.FAILED
    assert "encrypted with key" in other.error


def test_restore_refuses_without_yes(backup_settings, admin_user, monkeypatch):
    _customers(admin_user, 3)
    backup = backup_create(actor=admin_user)
    _customers(admin_user, 1)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", str(backup.pk))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Cancelled"):
        call_command("restore", str(backup.pk))
    assert Customer.objects.count() == 4
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("restore", str(backup.pk))
    assert Customer.objects.count() == 3


def test_restore_of_a_file_by_path_and_of_nothing(backup_settings, admin_user):
    backup = backup_create(actor=admin_user)
    call_command("restore", str(backup_settings.CIM_BACKUP_DIR / backup.file_name), "--yes")
    with pytest.raises(CommandError, match="No backup 999"):
        call_command("restore", "999", "--yes")


def _fake(settings, kind: str, days_ago: float, status=Backup.Status.VERIFIED) -> Backup:
    created = timezone.now() - timedelta(days=days_ago)
    name = f"cim-{created:%Y%m%dT%H%M%S%f}-{kind}.cimbak"
    folder = Path(settings.CIM_BACKUP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"x")
    (folder / name.replace(".cimbak", ".json")).write_text("{}")
    return Backup.objects.create(file_name=name, kind=kind, engine="sqlite", created_at=created, status=status)


def test_retention_keeps_the_newest_of_each_kind(backup_settings, admin_user):
    backup_settings.CIM_BACKUP_KEEP_DAILY = 3
    backup_settings.CIM_BACKUP_KEEP_WEEKLY = 2
    backup_settings.CIM_BACKUP_KEEP_MONTHLY = 1
    daily = [_fake(backup_settings, "daily", d) for d in range(6)]
    weekly = [_fake(backup_settings, "weekly", 7 * w) for w in range(4)]
    monthly = [_fake(backup_settings, "monthly", 30 * m) for m in range(3)]
    manual = [_fake(backup_settings, "manual", 400)]
    old_failure = _fake(backup_settings, "daily", 10, status=Backup.Status.FAILED)
    new_failure = _fake(backup_settings, "daily", 0.5, status=Backup.Status.FAILED)

    pruned = backup_prune(actor=admin_user)

    kept = set(Backup.objects.values_list("pk", flat=True))
    expected = {b.pk for b in daily[:3] + weekly[:2] + monthly[:1] + manual + [new_failure]}
    assert kept == expected
    assert len(pruned) == 3 + 2 + 2 + 1 and old_failure.file_name in pruned
    folder = Path(backup_settings.CIM_BACKUP_DIR)
    assert sorted(p.name for p in folder.glob("*.cimbak")) == sorted(b.file_name for b in Backup.objects.all())
    assert not (folder / daily[-1].file_name.replace(".cimbak", ".json")).exists()
    assert AuditEvent.objects.filter(action="backup.prune").count() == len(pruned)
    call_command("backup", "prune")  # nothing more to prune
    assert set(Backup.objects.values_list("pk", flat=True)) == expected


def test_scheduled_kind_follows_the_calendar(backup_settings):
    now = timezone.now()
    assert scheduled_kind(now) == Backup.Kind.MONTHLY
    _fake(backup_settings, "monthly", 0)
    local = timezone.localtime(now)
    first_of_week_in_month = local.day > local.weekday()  # this ISO week began in this month
    assert scheduled_kind(now) == Backup.Kind.DAILY if first_of_week_in_month else Backup.Kind.WEEKLY
    _fake(backup_settings, "weekly", 0)
    assert scheduled_kind(now) == Backup.Kind.DAILY


def test_daily_job_is_scheduled_and_backs_up_verifies_and_prunes(backup_settings):
    from cim.backups.tasks import backups_daily

    assert PERIODIC["cim.backups.tasks.backups_daily"].every == timedelta(days=1)
    result = backups_daily.call()
    backup = Backup.objects.get(pk=result["id"])
    assert backup.kind == Backup.Kind.MONTHLY and backup.status == Backup.Status.VERIFIED


def test_catalog_rebuilt_from_the_manifests(backup_settings, admin_user):
    backup = backup_create(actor=admin_user)
    backup_verify(backup=backup)
    Backup.objects.all().delete()
    call_command("backup", "rebuild-catalog")
    rebuilt = Backup.objects.get()
    assert (rebuilt.file_name, rebuilt.sha256, rebuilt.status) == (backup.file_name, backup.sha256, "verified")
    assert rebuilt.row_counts == backup.row_counts


def test_backup_list_and_create_commands(backup_settings, capsys):
    call_command("backup", "create", "--verify")
    call_command("backup", "list")
    out = capsys.readouterr().out
    assert "verified" in out and "last backup: recent" in out
