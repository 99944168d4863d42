"""Reads of the backup catalog that the page, the API, the CLI and `cim check` share."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from cim.backups.models import Backup

GOOD = (Backup.Status.CREATED, Backup.Status.VERIFIED)


def backup_list() -> QuerySet[Backup]:
    return Backup.objects.select_related("created_by")


def backup_get(*, backup_id: int) -> Backup:
    return Backup.objects.get(pk=backup_id)


@dataclass(frozen=True)
class BackupHealth:
    last: Backup | None  # the newest backup that was written completely
    last_verified: Backup | None
    max_age_hours: float
    stale: bool  # no complete backup, or the newest is older than CIM_BACKUP_MAX_AGE_HOURS

    @property
    def age(self) -> timedelta | None:
        return timezone.now() - self.last.created_at if self.last else None


def backup_health(*, now: datetime | None = None) -> BackupHealth:
    now = now or timezone.now()
    max_age = settings.CIM_BACKUP_MAX_AGE_HOURS
    last = Backup.objects.filter(status__in=GOOD).order_by("-created_at").first()
    verified = Backup.objects.filter(status=Backup.Status.VERIFIED).order_by("-created_at").first()
    stale = last is None or now - last.created_at > timedelta(hours=max_age)
    return BackupHealth(last=last, last_verified=verified, max_age_hours=max_age, stale=stale)
