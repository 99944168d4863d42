"""Every write of backups: create, verify, restore, prune, and rebuilding the catalog from the manifests."""

import io
import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import zstandard
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cim.audit.services import audit_record
from cim.backups import engines
from cim.backups.archive import BackupFileError, DecryptingReader, EncryptingWriter, backup_key, file_sha256
from cim.backups.models import Backup
from cim.core.signals import database_restored

SUFFIX = ".cimbak"
MANIFEST = "manifest.json"


class BackupError(Exception):
    """A backup could not be made, verified or restored; the message says why."""


def backup_dir() -> Path:
    path = Path(settings.CIM_BACKUP_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def engine_name() -> str:
    return "sqlite" if connection.vendor == "sqlite" else "postgresql"


def _migrations() -> dict[str, str]:
    """The last applied migration of each app: a restore or import must meet the same schema."""
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.order_by("app", "name").values_list("app", "name"):
        latest[app] = name
    return latest


def _uploads() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def manifest_path(file: Path) -> Path:
    return file.with_suffix(".json")


def scheduled_kind(now: datetime) -> str:
    """Monthly for the month's first good backup, weekly for the ISO week's first, else daily."""
    local = timezone.localtime(now)
    good = Backup.objects.filter(status__in=[Backup.Status.CREATED, Backup.Status.VERIFIED])
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if not good.filter(kind=Backup.Kind.MONTHLY, created_at__gte=month_start).exists():
        return Backup.Kind.MONTHLY
    week_start = (local - timezone.timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    if not good.filter(kind__in=[Backup.Kind.WEEKLY, Backup.Kind.MONTHLY], created_at__gte=week_start).exists():
        return Backup.Kind.WEEKLY
    return Backup.Kind.DAILY


def backup_create(*, kind: str = Backup.Kind.MANUAL, actor=None) -> Backup:
    """Snapshot the database (and uploaded files) into one compressed, encrypted file with a manifest beside it."""
    started, now = time.monotonic(), timezone.now()
    engine = engine_name()
    name = f"cim-{now:%Y%m%dT%H%M%S%fZ}-{kind}{SUFFIX}"
    folder = backup_dir()
    backup = Backup.objects.create(file_name=name, kind=kind, engine=engine, created_at=now, created_by=actor)
    key, key_id = backup_key()
    target, partial = folder / name, folder / (name + ".partial")
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".staging-") as staging:
            dump = Path(staging) / engines.dump_name(engine)
            counts = engines.SNAPSHOT[engine](dump)
            uploads = _uploads()
            manifest = {
                "format": 1,
                "file": name,
                "kind": kind,
                "engine": engine,
                "created_at": now.isoformat(),
                "key_id": key_id,
                "compression": "zstd",
                "row_counts": counts,
                "uploads": len(uploads),
                "migrations": _migrations(),
            }
            with partial.open("wb") as raw:
                sealed = EncryptingWriter(raw, key=key, key_id=key_id)
                packed = zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(sealed, closefd=False)
                with tarfile.open(fileobj=packed, mode="w|") as tar:
                    tar.add(dump, arcname=dump.name)
                    media = Path(settings.MEDIA_ROOT)
                    for path in uploads:
                        tar.add(path, arcname=f"uploads/{path.relative_to(media).as_posix()}")
                    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                packed.close()
                sealed.close()
                raw.flush()
            partial.replace(target)
        manifest.update(sha256=sealed.digest.hexdigest(), size=sealed.size)
        manifest_path(target).write_text(json.dumps(manifest, indent=2))
    except Exception as error:
        partial.unlink(missing_ok=True)
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.FAILED, error=str(error)[:2000])
        audit_record(actor=actor, action="backup.fail", target=backup, fields=["status"], note=type(error).__name__)
        raise BackupError(str(error)) from error
    with transaction.atomic():
        backup.size, backup.sha256, backup.key_id = sealed.size, manifest["sha256"], key_id
        backup.row_counts, backup.uploads, backup.status = counts, len(uploads), Backup.Status.CREATED
        backup.duration = round(time.monotonic() - started, 3)
        backup.save()
        audit_record(actor=actor, action="backup.create", target=backup, fields=["file_name", "kind", "sha256"])
    return backup


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, fileobj=io.BytesIO(data))


@contextmanager
def opened_backup(path: Path, *, expected_sha256: str | None = None) -> Iterator[tuple[Path, dict]]:
    """Check the file's checksum, decrypt and unpack it into a temporary folder beside it: (folder, manifest)."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    if expected_sha256 and file_sha256(path) != expected_sha256:
        raise BackupError(f"{path.name}: the SHA-256 differs from the catalog's: the file was changed or damaged")
    key, key_id = backup_key()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".unpack-") as folder:
        try:
            with path.open("rb") as raw:
                plain = DecryptingReader(raw, keys={key_id: key})
                unpacked = zstandard.ZstdDecompressor().stream_reader(plain, closefd=False)
                with tarfile.open(fileobj=unpacked, mode="r|") as tar:
                    tar.extractall(folder, filter="data")
        except (BackupFileError, zstandard.ZstdError, tarfile.TarError) as error:
            raise BackupError(f"{path.name}: {error}") from error
        manifest_file = Path(folder) / MANIFEST
        if not manifest_file.exists():
            raise BackupError(f"{path.name}: no manifest inside")
        yield Path(folder), json.loads(manifest_file.read_text())


def _counts_differ(expected: dict, found: dict) -> list[str]:
    return [
        f"{t}: {expected.get(t)} ≠ {found.get(t)}"
        for t in sorted(set(expected) | set(found))
        if expected.get(t) != found.get(t)
    ]


def backup_verify(*, backup: Backup, actor=None) -> Backup:
    """Checksum, decrypt, check the database inside (SQLite integrity_check, PostgreSQL restore into a scratch
    database) and compare its row counts with the manifest. Records verified_at, or the failure."""
    now = timezone.now()
    path = backup_dir() / backup.file_name
    try:
        with opened_backup(path, expected_sha256=backup.sha256 or None) as (folder, manifest):
            dump = folder / engines.dump_name(manifest["engine"])
            try:
                found = engines.CHECK[manifest["engine"]](dump)
            except engines.RestoreError as error:
                raise BackupError(str(error)) from error
            if differ := _counts_differ(manifest["row_counts"], found):
                raise BackupError("row counts differ from the manifest: " + "; ".join(differ[:10]))
    except BackupError as error:
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.FAILED, error=str(error)[:2000], checked_at=now)
        audit_record(actor=actor, action="backup.verify_fail", target=backup, fields=["status"])
        backup.refresh_from_db()
        return backup
    _manifest_note(path, verified_at=now.isoformat())
    with transaction.atomic():
        backup.status, backup.error, backup.verified_at, backup.checked_at = Backup.Status.VERIFIED, "", now, now
        backup.save(update_fields=["status", "error", "verified_at", "checked_at"])
        audit_record(actor=actor, action="backup.verify", target=backup, fields=["status", "verified_at"])
    return backup


def _manifest_note(path: Path, **values) -> None:
    """Record a verification in the manifest too, so a catalog rebuilt after a restore still knows it."""
    side = manifest_path(path)
    if side.exists():
        manifest = json.loads(side.read_text())
        manifest.update(values)
        side.write_text(json.dumps(manifest, indent=2))


def backup_restore(*, path: Path, actor=None, uploads: bool = True) -> dict:
    """Put the backup in `path` in place of the live database (and its uploaded files back), rebuild the catalog
    from the manifests, then send `database_restored` (see cim.core.signals). Returns the backup's manifest."""
    path = Path(path)
    expected = None
    if manifest_path(path).exists():
        expected = json.loads(manifest_path(path).read_text()).get("sha256")
    with opened_backup(path, expected_sha256=expected) as (folder, manifest):
        if manifest["engine"] != engine_name():
            raise BackupError(
                f"{path.name} holds a {manifest['engine']} database and this installation runs on {engine_name()}: "
                "move between engines with `cim backup export-jsonl` / `import-jsonl`"
            )
        try:
            engines.RESTORE[manifest["engine"]](folder / engines.dump_name(manifest["engine"]))
        except engines.RestoreError as error:
            raise BackupError(str(error)) from error
        if uploads and (folder / "uploads").is_dir():
            shutil.copytree(folder / "uploads", settings.MEDIA_ROOT, dirs_exist_ok=True)
    ContentType.objects.clear_cache()
    backup_catalog_rebuild()
    restored = Backup.objects.filter(file_name=manifest["file"]).first()
    audit_record(
        actor=None, action="backup.restore", target=restored, target_type="backups.backup", fields=["file_name"]
    )
    try:
        database_restored.send(
            sender=Backup,
            backup=restored,
            manifest=manifest,
            taken_at=parse_datetime(manifest["created_at"]),
            actor=actor,
        )
    except Exception as error:
        raise BackupError(
            f"the database was restored, but a database_restored receiver failed ({type(error).__name__}: {error}); "
            "run the restore again"
        ) from error
    return manifest


def backup_catalog_rebuild() -> int:
    """Make the catalog match the backup folder: a row for each manifest, none for a file that is gone."""
    folder = backup_dir()
    seen = []
    rows = 0
    for manifest_file in sorted(folder.glob("*.json")):
        try:
            manifest = json.loads(manifest_file.read_text())
        except ValueError:
            continue
        name = manifest.get("file")
        if not name or not (folder / name).exists():
            continue
        seen.append(name)
        existing = Backup.objects.filter(file_name=name).first()
        if existing and existing.status in (Backup.Status.VERIFIED, Backup.Status.FAILED):
            continue
        defaults = {
            "kind": manifest["kind"],
            "engine": manifest["engine"],
            "size": manifest.get("size", 0),
            "sha256": manifest.get("sha256", ""),
            "key_id": manifest.get("key_id", ""),
            "row_counts": manifest.get("row_counts", {}),
            "uploads": manifest.get("uploads", 0),
            "created_at": parse_datetime(manifest["created_at"]),
            "status": Backup.Status.VERIFIED if manifest.get("verified_at") else Backup.Status.CREATED,
            "verified_at": parse_datetime(manifest["verified_at"]) if manifest.get("verified_at") else None,
            "error": "",
        }
        Backup.objects.update_or_create(file_name=name, defaults=defaults)
        rows += 1
    # Rows whose file is gone (pruned after the restored snapshot was taken), or that were running in the snapshot.
    in_progress = {"status": Backup.Status.RUNNING, "created_at__gte": timezone.now() - timezone.timedelta(hours=6)}
    Backup.objects.exclude(file_name__in=seen).exclude(**in_progress).delete()
    return rows


def backup_prune(*, actor=None, now: datetime | None = None) -> list[str]:
    """Keep the newest CIM_BACKUP_KEEP_DAILY daily, _WEEKLY weekly and _MONTHLY monthly good backups; delete older
    ones of those kinds (file, manifest, catalog row), and failed ones older than the oldest kept. Manual backups
    are never pruned."""
    keep = {
        Backup.Kind.DAILY: settings.CIM_BACKUP_KEEP_DAILY,
        Backup.Kind.WEEKLY: settings.CIM_BACKUP_KEEP_WEEKLY,
        Backup.Kind.MONTHLY: settings.CIM_BACKUP_KEEP_MONTHLY,
    }
    good = [Backup.Status.CREATED, Backup.Status.VERIFIED]
    doomed: list[Backup] = []
    for kind, count in keep.items():
        rows = list(Backup.objects.filter(kind=kind, status__in=good).order_by("-created_at", "-pk"))
        doomed += rows[count:]
        if rows[:count]:
            oldest_kept = rows[:count][-1].created_at
            doomed += Backup.objects.filter(kind=kind, status=Backup.Status.FAILED, created_at__lt=oldest_kept)
    folder = backup_dir()
    names = []
    with transaction.atomic():
        for backup in doomed:
            (folder / backup.file_name).unlink(missing_ok=True)
            manifest_path(folder / backup.file_name).unlink(missing_ok=True)
            audit_record(actor=actor, action="backup.prune", target=backup, fields=["file_name"])
            names.append(backup.file_name)
        Backup.objects.filter(pk__in=[b.pk for b in doomed]).delete()
    return names
