"""Verifying the chain and exporting the log, each recorded in the log itself."""

import csv
import io
from collections.abc import Callable
from typing import BinaryIO

import xlsxwriter
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.audit.chain import Verification, chain_verify
from cim.audit.filters import AuditFilter
from cim.audit.selectors import audit_event_list
from cim.audit.services import audit_record
from cim.core.downloads import FORMULA_STARTS

EXPORT_FORMATS = ("csv", "xlsx")
BATCH = 5000


def audit_verify(*, actor, progress: Callable[[int], None] | None = None, batch_size: int = BATCH) -> Verification:
    """Walk the whole chain (see chain.chain_verify), then record that it was verified and what was found."""
    result = chain_verify(progress=progress, batch_size=batch_size)
    note = f"ok checked={result.checked}" if result.ok else f"{result.problem} seq={result.seq} id={result.event_id}"
    audit_record(actor=actor, action="audit.verify", target=None, target_type="audit.auditevent", note=note)
    return result


def _header() -> list[str]:
    return [
        _("Seq"),
        _("Time"),
        _("Actor"),
        _("Action"),
        _("Target type"),
        _("Target id"),
        _("Fields"),
        _("Request id"),
        _("Note"),
    ]


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _rows(filters: AuditFilter, progress):
    events = audit_event_list(filters=filters).values_list(
        "seq", "at", "actor__username", "action", "target_type", "target_id", "fields", "request_id", "note"
    )
    for count, (seq, at, actor, *rest, fields, rid, note) in enumerate(events.iterator(chunk_size=BATCH), 1):
        when = timezone.localtime(at).isoformat(timespec="seconds")
        yield [seq, when, actor or "", *map(_cell, rest), ", ".join(fields or []), rid, _cell(note)]
        if progress and count % BATCH == 0:
            progress(BATCH)


def audit_export(
    *, actor, filters: AuditFilter, fmt: str, out: BinaryIO, progress: Callable[[int], None] | None = None
) -> int:
    """Write the filtered log to `out` as CSV (UTF-8 with a BOM, for Excel) or XLSX, in flat memory; record the
    export (format, rows, filters) in the log. Returns the number of rows."""
    rows = 0
    if fmt == "xlsx":
        workbook = xlsxwriter.Workbook(out, {"constant_memory": True})
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, _header())
        for rows, values in enumerate(_rows(filters, progress), 1):
            sheet.write_number(rows, 0, values[0])
            for column, value in enumerate(values[1:], 1):
                sheet.write_string(rows, column, value)
        workbook.close()
    else:
        text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        writer = csv.writer(text)
        writer.writerow(_header())
        for values in _rows(filters, progress):
            writer.writerow(values)
            rows += 1
        text.flush()
        text.detach()
    note = f"format={fmt} rows={rows} {filters.describe()}".strip()
    audit_record(actor=actor, action="audit.export", target=None, target_type="audit.auditevent", note=note)
    return rows
