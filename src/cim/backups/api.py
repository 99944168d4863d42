"""The backups API (administrators): the catalog, and creating or verifying a backup in the background. Restoring
is deliberately not here: it replaces the database under the running server, so it is `cim restore` only."""

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Router, Schema
from ninja.responses import Status

from cim.accounts.roles import Perm, has_perm
from cim.backups.models import Backup
from cim.backups.selectors import backup_health, backup_list
from cim.backups.tasks import backup_create_run, backup_verify_run
from cim.customers.services import PermissionDenied

router = Router(tags=["backups"])


def _require(request) -> None:
    if not has_perm(request.auth, Perm.BACKUP_MANAGE):
        raise PermissionDenied(Perm.BACKUP_MANAGE)


class BackupOut(Schema):
    id: int
    file_name: str
    kind: Backup.Kind
    engine: str
    size: int
    sha256: str
    key_id: str
    row_counts: dict[str, int]
    uploads: int
    status: Backup.Status
    error: str
    created_at: datetime
    verified_at: datetime | None


class CatalogOut(Schema):
    stale: bool
    max_age_hours: float
    last_backup: BackupOut | None
    last_verified: BackupOut | None
    backups: list[BackupOut]


class QueuedOut(Schema):
    task: str
    status: str


class CreateIn(Schema):
    verify: bool = True


@router.get("/backups", response=CatalogOut, summary="The backup catalog, the last good backup and whether it is old")
def list_backups(request, limit: int = 100):
    _require(request)
    health = backup_health()
    return {
        "stale": health.stale,
        "max_age_hours": health.max_age_hours,
        "last_backup": health.last,
        "last_verified": health.last_verified,
        "backups": list(backup_list()[: max(1, min(limit, 1000))]),
    }


@router.post("/backups", response={202: QueuedOut}, summary="Make a backup now (background), verified by default")
def create_backup(request, payload: CreateIn | None = None):
    _require(request)
    result = backup_create_run.enqueue(user_id=request.auth.pk, verify=payload.verify if payload else True)
    return Status(202, {"task": str(result.id), "status": str(result.status)})


@router.post("/backups/{backup_id}/verify", response={202: QueuedOut}, summary="Verify a backup (background)")
def verify_backup(request, backup_id: int):
    _require(request)
    backup = get_object_or_404(Backup, pk=backup_id)
    result = backup_verify_run.enqueue(backup_id=backup.pk, user_id=request.auth.pk)
    return Status(202, {"task": str(result.id), "status": str(result.status)})
