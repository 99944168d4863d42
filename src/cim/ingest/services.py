"""Importing customers from files: every write of an import job (the batch work is in `importer`).

A job reads its file in batches. Each batch is one transaction that also moves the job's checkpoint, so a job
killed midway leaves whole batches behind and resumes after the last one; nothing is ever half-written.
A dry run is the same work inside a savepoint that is rolled back: its counts are what the import will do.
"""

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.core.background import collector_paused
from cim.core.bulk import rare_checkpoints
from cim.customers.services import PermissionDenied
from cim.ingest.importer import ImportCounts, Importer
from cim.ingest.interaction_import import (
    InteractionImporter,
    interaction_auto_map,
    interaction_mapping_errors,
    interaction_target_choices,
)
from cim.ingest.mapping import auto_map, mapping_errors, target_choices
from cim.ingest.models import ImportJob, ImportMapping, ImportRowError
from cim.ingest.order_import import OrderImporter, order_auto_map, order_mapping_errors, order_target_choices
from cim.ingest.readers import TEXT_ENCODINGS, FileProblem, RowProblem, Table, open_table

# Big batches: each commit writes every index page its rows touched, and rows with random keys (names, phones'
# match keys) touch most pages of a big index whatever the batch size. 20,000 rows hold the write lock 1–2 s.
BATCH_ROWS = 20_000


@dataclass(frozen=True)
class ImportKind:
    perm: str
    auto_map: Callable[[list[str]], dict[str, str]]
    mapping_errors: Callable[[dict[str, str], list[str]], list[str]]
    importer: type
    targets: Callable[[], list[tuple[str, str]]]  # (field, label) a column may fill


IMPORT_KINDS = {
    "customers": ImportKind(Perm.CUSTOMER_IMPORT, auto_map, mapping_errors, Importer, target_choices),
    "orders": ImportKind(Perm.ORDER_IMPORT, order_auto_map, order_mapping_errors, OrderImporter, order_target_choices),
    "interactions": ImportKind(
        Perm.ORDER_IMPORT,
        interaction_auto_map,
        interaction_mapping_errors,
        InteractionImporter,
        interaction_target_choices,
    ),
}
ACTIVE_STATUSES = (ImportJob.Status.QUEUED, ImportJob.Status.CHECKING, ImportJob.Status.RUNNING)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _imports_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def import_job_create(
    *,
    path: Path,
    filename: str,
    actor,
    mapping: dict[str, str] | None = None,
    source: str = "",
    source_channel: str = "",
    update_existing: bool = False,
    kind: str = "customers",
    sheet: str = "",
    encoding: str = "",
) -> ImportJob:
    """Keep a copy of the file and read its columns; raises ValidationError when it cannot be read or mapped.
    `kind`: what the rows are, "customers", "orders" or "interactions". In a workbook, `sheet` is read; without
    it, the first visible sheet whose columns map (a first sheet of instructions, 填写说明, is passed over). A
    text file is read in `encoding` (one of `TEXT_ENCODINGS`) when given, else in the one found."""
    spec = IMPORT_KINDS[kind]
    if actor is not None and not has_perm(actor, spec.perm):
        raise PermissionDenied(spec.perm)
    if encoding and encoding not in TEXT_ENCODINGS:
        raise ValidationError({"encoding": [_("Choose one of the encodings offered.")]})
    try:
        table, mapped, problems = _table_and_mapping(spec, path, filename, sheet, mapping, encoding)
    except FileProblem as problem:
        raise ValidationError({"file": [str(problem)]}) from None
    if problems:
        raise ValidationError({"mapping": problems})
    stored = _imports_dir() / uuid.uuid4().hex / "upload"
    stored.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, stored)
    job = ImportJob.objects.create(
        kind=kind,
        file=str(stored.relative_to(settings.MEDIA_ROOT)),
        filename=filename[:255],
        sha256=file_sha256(path),
        file_format=table.file_format,
        encoding=table.encoding,
        headers=table.columns,
        header_row=table.header_row,
        sheet=table.sheet[:100],
        mapping=mapped,
        source=source[:50],
        source_channel=source_channel,
        update_existing=update_existing,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_record(
        actor=actor, action="import.create", target=job, note=f"{job.file_format}, {len(table.columns)} columns"
    )
    return job


def import_job_upload(*, upload: UploadedFile, **options) -> ImportJob:
    """`import_job_create` for a file uploaded to the wizard or the API."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "upload"
        with path.open("wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        return import_job_create(path=path, filename=upload.name or "upload", **options)


def _table_and_mapping(
    spec: ImportKind, path: Path, filename: str, sheet: str, mapping: dict[str, str] | None, encoding: str
) -> tuple[Table, dict[str, str], list[str]]:
    """The file's table, its mapping (the one given, or found from the headers) and what is wrong with that. When
    no sheet is named and the first one's columns do not map, the workbook's later sheets are tried."""
    table = open_table(path, filename, sheet, encoding)
    later = table.sheets[table.sheets.index(table.sheet) + 1 :] if table.sheet and not sheet else []
    first = None
    for name in ["", *later]:
        try:
            candidate = open_table(path, filename, name) if name else table
        except FileProblem:
            continue  # a sheet without a header
        found = dict(mapping) if mapping is not None else spec.auto_map(candidate.columns)
        problems = spec.mapping_errors(found, candidate.columns)
        if not problems:
            return candidate, found, []
        first = first or (candidate, found, problems)
    return first


def import_job_remap(*, job: ImportJob, mapping: dict[str, str], actor) -> ImportJob:
    """Change the mapping of a job that has not started importing; forgets an earlier dry run."""
    if (
        job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED, ImportJob.Status.FAILED)
        or job.rows_done
    ):
        raise ValidationError({"mapping": [_("This import has started; its mapping can no longer change.")]})
    problems = IMPORT_KINDS[job.kind].mapping_errors(mapping, job.headers)
    if problems:
        raise ValidationError({"mapping": problems})
    job.mapping = mapping
    job.status = ImportJob.Status.UPLOADED
    job.dry_run_counts = {}
    job.save(update_fields=["mapping", "status", "dry_run_counts"])
    audit_record(actor=actor, action="import.remap", target=job, fields=["mapping"])
    return job


def import_job_start(*, job: ImportJob, actor, dry_run: bool) -> ImportJob:
    """Queue the import (or its dry run) for the background worker."""
    from cim.ingest.tasks import import_job_run  # the task runs `import_run` of this module

    if actor is not None and not has_perm(actor, IMPORT_KINDS[job.kind].perm):
        raise PermissionDenied(IMPORT_KINDS[job.kind].perm)
    if job.status in ACTIVE_STATUSES or job.status == ImportJob.Status.DONE:
        raise ValidationError({"status": [_("This import is already running or done.")]})
    with transaction.atomic():  # a queue that cannot be reached leaves the job as it was, to be started again
        job.status = ImportJob.Status.QUEUED
        job.save(update_fields=["status"])
        import_job_run.enqueue(job_id=job.pk, user_id=actor and actor.pk, dry_run=dry_run)
    audit_record(actor=actor, action="import.start", target=job, note=f"dry_run={dry_run}")
    return job


def import_errors_read(*, job: ImportJob, dry_run: bool, actor, via: str = "") -> QuerySet[ImportRowError]:
    """The rejected rows of an import (or of its dry run), in row order; reading them is recorded."""
    audit_record(actor=actor, action="import.errors_export", target=job, note=f"dry_run={dry_run} {via}".strip())
    return ImportRowError.objects.filter(job=job, dry_run=dry_run).order_by("row", "id")


def import_job_unfinished(*, sha256: str, actor) -> ImportJob | None:
    """An import of the same file by the same user that stopped midway: running it again resumes it."""
    return (
        ImportJob.objects.filter(
            sha256=sha256, created_by=actor, status__in=[ImportJob.Status.RUNNING, ImportJob.Status.QUEUED]
        )
        .order_by("-id")
        .first()
    )


def _batches(rows: Iterator, skip_through: int) -> Iterator[list[tuple[int, dict | RowProblem]]]:
    batch = []
    for number, record in rows:
        if number <= skip_through:
            continue
        batch.append((number, record))
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def import_run(
    *, job: ImportJob, actor, dry_run: bool = False, progress: Callable[[int], None] | None = None
) -> ImportCounts:
    """Import (or, with `dry_run`, only count) the rows of `job` after its checkpoint. Returns the counts."""
    spec = IMPORT_KINDS[job.kind]
    if actor is not None and not has_perm(actor, spec.perm):
        raise PermissionDenied(spec.perm)
    if job.status == ImportJob.Status.DONE:
        return ImportCounts(**job.counts)
    try:
        table = open_table(Path(settings.MEDIA_ROOT) / job.file, job.filename, job.sheet, job.encoding)
    except FileProblem as problem:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, message=str(problem)[:500])
        raise ValidationError({"file": [str(problem)]}) from None
    job.status = ImportJob.Status.CHECKING if dry_run else ImportJob.Status.RUNNING
    job.save(update_fields=["status"])
    if dry_run:
        ImportRowError.objects.filter(job=job, dry_run=True).delete()
    importer = spec.importer(job, actor, dry_run)
    batches = _batches(table.rows, 0 if dry_run else job.rows_done)
    file_bytes = (Path(settings.MEDIA_ROOT) / job.file).stat().st_size
    with collector_paused(), rare_checkpoints():
        for batch in importer.prepared_batches(batches, file_bytes=file_bytes):
            importer.run_batch(batch)
            if progress:
                progress(len(batch))
    if dry_run:
        job.dry_run_counts = asdict(importer.counts)
        job.status = ImportJob.Status.CHECKED
        job.save(update_fields=["dry_run_counts", "status"])
    else:
        job.status = ImportJob.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        audit_record(
            actor=actor,
            action="import.finish",
            target=job,
            note=", ".join(f"{name} {value}" for name, value in job.counts.items()),
        )
    return importer.counts


def import_mapping_save(*, name: str, mapping: dict[str, str], actor) -> ImportMapping:
    """Save (or replace) a named mapping for the next file from the same system."""
    saved, _created = ImportMapping.objects.update_or_create(
        name=name[:100], defaults={"mapping": mapping, "created_by": actor if actor.is_authenticated else None}
    )
    audit_record(actor=actor, action="import.mapping_save", target=saved)
    return saved
