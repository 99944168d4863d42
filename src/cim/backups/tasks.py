"""Background backups, run by `cim worker`: the daily backup (verified, then old ones pruned), and the create and
verify buttons of the backups page and API."""

from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from cim.accounts.models import User
from cim.backups.models import Backup
from cim.backups.services import backup_create, backup_prune, backup_verify, scheduled_kind
from cim.core.schedule import periodic


@task()
def backup_create_run(*, user_id: int | None = None, verify: bool = True) -> dict:
    user = User.objects.filter(pk=user_id).first() if user_id else None
    backup = backup_create(kind=Backup.Kind.MANUAL, actor=user)
    if verify:
        backup = backup_verify(backup=backup, actor=user)
    return {"id": backup.pk, "file": backup.file_name, "status": backup.status}


@task()
def backup_verify_run(*, backup_id: int, user_id: int | None = None) -> dict:
    user = User.objects.filter(pk=user_id).first() if user_id else None
    backup = backup_verify(backup=Backup.objects.get(pk=backup_id), actor=user)
    return {"id": backup.pk, "status": backup.status, "error": backup.error}


@periodic(every=timedelta(days=1))
@task()
def backups_daily() -> dict:
    """The scheduled backup: monthly, weekly or daily by the calendar; verified; then the retention applied."""
    backup = backup_create(kind=scheduled_kind(timezone.now()))
    backup = backup_verify(backup=backup)
    return {"id": backup.pk, "status": backup.status, "pruned": backup_prune()}
