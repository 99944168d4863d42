"""The import API: the wizard's steps for scripts. Upload a file (its columns are mapped from the headers), change
the mapping, queue a dry run or the import for the background worker, follow the job, read the rejected rows."""

import json
from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from cim.accounts.roles import Perm, has_perm
from cim.core.pagination import keyset_page
from cim.customers.choices import SourceChannel
from cim.customers.services import PermissionDenied
from cim.ingest.models import ImportJob, ImportMapping
from cim.ingest.readers import TEXT_ENCODINGS
from cim.ingest.selectors import import_job_get, import_job_list
from cim.ingest.services import (
    IMPORT_KINDS,
    import_errors_read,
    import_job_remap,
    import_job_start,
    import_job_upload,
    import_mapping_save,
)

router = Router(tags=["imports"])
Kind = Literal["customers", "orders", "interactions"]
TextEncoding = Literal[("", *TEXT_ENCODINGS)]


def _require_any_import(request) -> None:
    if not any(has_perm(request.auth, kind.perm) for kind in IMPORT_KINDS.values()):
        raise PermissionDenied(Perm.CUSTOMER_IMPORT)


class ImportJobOut(Schema):
    id: int
    kind: Kind
    status: ImportJob.Status
    filename: str
    file_format: str = Field(
        description="csv, xlsx, xls, xml2003 (Excel 2003 XML), html (a web page table), vcf, json or jsonl"
    )
    encoding: str
    sheet: str = Field(description="The workbook's sheet read; empty for files without sheets")
    header_row: int = Field(description="The file's row that holds the header; rows above it are not read")
    headers: list[str]
    mapping: dict[str, str] = Field(description="Column → field; an empty field leaves the column out")
    source: str
    source_channel: str
    update_existing: bool
    rows_done: int = Field(description="The last row of the file written (the checkpoint an import resumes after)")
    counts: dict[str, int]
    dry_run_counts: dict[str, int]
    message: str
    created_at: datetime
    finished_at: datetime | None


class ImportCreateIn(Schema):
    kind: Kind = "customers"
    mapping: str = Field(
        "", description="A JSON object {column: field}; without it (and `saved_mapping`) the headers are mapped"
    )
    saved_mapping: str = Field("", max_length=100, description="The name of a mapping saved in the wizard")
    source: str = Field("", max_length=50, description="The system the file comes from: its ids are matched")
    source_channel: SourceChannel | Literal[""] = ""
    update_existing: bool = False
    sheet: str = Field("", max_length=100, description="The workbook's sheet; default: the first whose columns map")
    encoding: TextEncoding = Field(
        "", description="A text file's encoding when the one found is wrong: " + ", ".join(TEXT_ENCODINGS)
    )


class MappingIn(Schema):
    mapping: dict[str, str]
    save_as: str = Field("", max_length=100, description="Also save the mapping under this name")


class StartIn(Schema):
    dry_run: bool = False


class FieldOut(Schema):
    name: str
    label: str


class RowErrorOut(Schema):
    row: int
    column: str
    reason: str

    @staticmethod
    def resolve_reason(error) -> str:
        return error.message


class RowErrorPage(Schema):
    items: list[RowErrorOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def _mapping(data: ImportCreateIn) -> dict[str, str] | None:
    if data.saved_mapping:
        saved = ImportMapping.objects.filter(name=data.saved_mapping).first()
        if saved is None:
            raise ValidationError({"saved_mapping": [_("No mapping is saved under this name.")]})
        return saved.mapping
    if not data.mapping:
        return None
    try:
        mapping = json.loads(data.mapping)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ValidationError({"mapping": [_("Enter a JSON object of column name → field name.")]})
    return mapping


@router.post(
    "/imports",
    response={201: ImportJobOut},
    summary="Upload a file to import (multipart: `file` and the fields below); nothing is written yet",
    description="CSV, Excel (.xlsx, .xls), vCard, JSON or JSON Lines, as in docs/import.md. The answer holds the "
    "columns and their mapping; a file that cannot be read or mapped is refused with 422 and the reasons.",
)
def create_import(request, file: File[UploadedFile], data: Form[ImportCreateIn]):
    job = import_job_upload(
        upload=file,
        actor=request.auth,
        mapping=_mapping(data),
        source=data.source,
        source_channel=data.source_channel,
        update_existing=data.update_existing,
        kind=data.kind,
        sheet=data.sheet.strip(),
        encoding=data.encoding,
    )
    return Status(201, job)


@router.get("/imports", response=list[ImportJobOut], summary="The imports you made (administrators: everyone's)")
def list_imports(request, limit: int = Query(20, ge=1, le=200)):
    _require_any_import(request)
    return import_job_list(user=request.auth).order_by("-id")[:limit]


@router.get("/imports/fields", response=list[FieldOut], summary="The fields a column of an import may fill")
def import_fields(request, kind: Kind = "customers"):
    _require_any_import(request)
    return [{"name": name, "label": label} for name, label in IMPORT_KINDS[kind].targets()]


@router.get("/imports/{import_id}", response=ImportJobOut, summary="An import: its status, progress and counts")
def get_import(request, import_id: int):
    _require_any_import(request)
    return import_job_get(user=request.auth, pk=import_id)


@router.put("/imports/{import_id}/mapping", response=ImportJobOut, summary="Change the mapping before the import")
def put_import_mapping(request, import_id: int, payload: MappingIn):
    _require_any_import(request)
    job = import_job_remap(
        job=import_job_get(user=request.auth, pk=import_id), mapping=payload.mapping, actor=request.auth
    )
    if payload.save_as.strip():
        import_mapping_save(name=payload.save_as.strip(), mapping=payload.mapping, actor=request.auth)
    return job


@router.post(
    "/imports/{import_id}/run",
    response={202: ImportJobOut},
    summary="Queue the import, or with `dry_run` only count what it would do, for the background worker",
)
def run_import(request, import_id: int, payload: StartIn):
    _require_any_import(request)
    job = import_job_start(
        job=import_job_get(user=request.auth, pk=import_id), actor=request.auth, dry_run=payload.dry_run
    )
    return Status(202, job)


@router.get(
    "/imports/{import_id}/errors",
    response=RowErrorPage,
    summary="The rejected rows (row, column, reason), of the import or of its dry run",
)
def import_errors(
    request, import_id: int, dry_run: bool = False, cursor: str | None = None, limit: int = Query(500, ge=1, le=5000)
):
    _require_any_import(request)
    job = import_job_get(user=request.auth, pk=import_id)
    errors = import_errors_read(job=job, dry_run=dry_run, actor=request.auth, via="api")
    items, next_cursor = keyset_page(errors, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}
