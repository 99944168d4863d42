"""Customer export: a filtered list as CSV, XLSX or JSON Lines, streamed, within the user's scope, audited.

Column names are the stable machine names an import maps back 1:1 (docs/export.md). Rows are read in
batches of `CHUNK_ROWS`, each with its tags and contact points, so memory stays flat for a million rows.
"""

import csv
import io
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import xlsxwriter
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.core.replica import replica_reads
from cim.customers.choices import CustomFieldType
from cim.customers.filters import CustomerFilter
from cim.customers.models import Address, Customer, CustomerTag, CustomFieldDefinition, Email, Phone
from cim.customers.selectors import custom_field_definitions, customer_list
from cim.customers.services import PermissionDenied
from cim.privacy.masking import field_policy, mask_value
from cim.privacy.registry import field_info

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
HEADERS = ("names", "labels")
# Tag names, choices, phones and emails are stored cleaned, without line breaks: a line break can
# never be part of a value, so lists need no escaping (a `|` may be in a tag name or an email address).
SEPARATOR = "\n"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection"): such cells get a
# leading `'`, which the importer strips again (`customer_rows._NEUTRALISED`).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 2000
BUFFER_SIZE = 1 << 16  # characters (CSV, JSON Lines) or bytes (XLSX) per streamed chunk
XLSX_SHEET_ROWS = 1_048_576  # Excel's limit, the header included; more rows go on the next sheet

PROFILE_FIELDS = (
    "number",
    "display_name",
    "family_name",
    "given_name",
    "alias",
    "english_name",
    "kind",
    "gender",
)
ORGANIZATION_FIELDS = ("company", "job_title", "uscc", "industry", "company_size")
CLASSIFICATION_FIELDS = ("customer_type", "source_channel", "value_tier", "region", "lifecycle_stage", "status")
# The primary address, one column per part, named as the importer names them (`address` is the street).
ADDRESS_COLUMNS = {
    "country": "country",
    "province": "province",
    "city": "city",
    "district": "district",
    "address": "street",
    "postal_code": "postal_code",
}
# Filters whose values may be personal (a searched name, a custom field value): the audit names them only.
FREE_TEXT_FILTERS = frozenset({"q", "tag", "cf"})


@dataclass(frozen=True)
class Column:
    """One exported column: its machine name, its label for people, and how a customer's record gives its value."""

    name: str
    label: Any  # shown with `headers="labels"`: a translation, read in the language active at export
    value: Callable[[dict], Any]
    reads: str  # the customer column (a `values()` name) or the relation (one of RELATIONS) the value needs
    multiline: bool = False  # lists and notes: wrapped in XLSX so each value shows on its own line


def field_label(name: str):
    return capfirst(Customer._meta.get_field(name).verbose_name)


def _plain(name: str) -> Column:
    return Column(name, field_label(name), itemgetter(name), name)


def _local_iso(name: str) -> Column:
    return Column(name, field_label(name), lambda r: timezone.localtime(r[name]).isoformat(), name)


def _address_column(name: str, part: str) -> Column:
    label = capfirst(Address._meta.get_field(part).verbose_name)
    return Column(name, label, lambda r: r["primary_address"] and r["primary_address"][part], "primary_address")


def _custom_column(definition: CustomFieldDefinition) -> Column:
    key = definition.key
    return Column(
        f"cf.{key}",
        definition.label(get_language() or "en"),
        lambda r: r["custom_fields"].get(key),
        "custom_fields",
        multiline=definition.field_type == CustomFieldType.MULTI_CHOICE,
    )


def export_columns() -> list[Column]:
    """Every column an export can have, in the default order; one per active custom field at the end."""
    return [
        *(_plain(name) for name in PROFILE_FIELDS),
        Column("birthday", field_label("birthday"), lambda r: r["birthday"] and r["birthday"].isoformat(), "birthday"),
        _plain("id_number"),
        *(_plain(name) for name in (*ORGANIZATION_FIELDS, *CLASSIFICATION_FIELDS)),
        Column("owner", field_label("owner"), itemgetter("owner__username"), "owner__username"),
        Column("team", field_label("team"), itemgetter("team__name"), "team__name"),
        Column("tags", field_label("tags"), itemgetter("tags"), "tags", multiline=True),
        Column("phones", capfirst(Phone._meta.verbose_name_plural), itemgetter("phones"), "phones", multiline=True),
        Column("emails", capfirst(Email._meta.verbose_name_plural), itemgetter("emails"), "emails", multiline=True),
        *(_address_column(name, part) for name, part in ADDRESS_COLUMNS.items()),
        Column("notes", field_label("notes"), itemgetter("notes"), "notes", multiline=True),
        _local_iso("created_at"),
        _local_iso("updated_at"),
        *(_custom_column(definition) for definition in custom_field_definitions()),
    ]


def _lists(pairs) -> defaultdict:
    """{customer id: [values]} from (customer id, value) pairs, in the pairs' order."""
    found = defaultdict(list)
    for customer_id, value in pairs:
        found[customer_id].append(value)
    return found


def _first_addresses(ids: list[int]) -> defaultdict:
    """{customer id: the primary address's parts}, or the oldest address's when none is marked primary."""
    found: defaultdict = defaultdict(lambda: None)
    addresses = Address.objects.filter(customer_id__in=ids).order_by("-is_primary", "id")
    for row in addresses.values("customer_id", *ADDRESS_COLUMNS.values()):
        found.setdefault(row.pop("customer_id"), row)
    return found


# What a batch of customers reads besides its own columns: one query per relation and batch.
RELATIONS: dict[str, Callable[[list[int]], defaultdict]] = {
    "tags": lambda ids: _lists(
        CustomerTag.objects.filter(customer_id__in=ids).order_by("tag__name").values_list("customer_id", "tag__name")
    ),
    "phones": lambda ids: _lists(
        Phone.objects.filter(customer_id__in=ids).order_by("-is_primary", "id").values_list("customer_id", "number")
    ),
    "emails": lambda ids: _lists(
        Email.objects.filter(customer_id__in=ids).order_by("-is_primary", "id").values_list("customer_id", "address")
    ),
    "primary_address": _first_addresses,
}


def _choose(columns: list[Column], fields: Iterable[str] | None) -> list[Column]:
    """The columns named by `fields`, in that order; `cf` stands for all custom field columns."""
    if not fields:
        return columns
    by_name = {column.name: column for column in columns}
    chosen: dict[str, Column] = {}
    for name in (f.strip() for f in fields):
        if name == "cf":
            chosen.update((c.name, c) for c in columns if c.name.startswith("cf."))
        elif name in by_name:
            chosen[name] = by_name[name]
        elif name:
            raise ValidationError(
                {
                    "fields": [
                        _("There is no column “%(name)s”; choose from: %(names)s.")
                        % {"name": name[:60], "names": ", ".join(by_name)}
                    ]
                }
            )
    if not chosen:
        raise ValidationError({"fields": [_("Choose at least one column.")]})
    return list(chosen.values())


def _cell(value: Any) -> str:
    """A value as spreadsheet text: lists one per line, and formula-like text neutralised with a leading `'`."""
    if value is None:
        return ""
    text = SEPARATOR.join(map(str, value)) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_chunks(header: list[str], rows: Iterable[list]) -> Iterator[bytes]:
    # The BOM tells Excel the file is UTF-8; without it Excel reads Chinese as the ANSI code page.
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([_cell(name) for name in header])
    for row in rows:
        writer.writerow([_cell(value) for value in row])
        if buffer.tell() >= BUFFER_SIZE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _jsonl_chunks(names: list[str], rows: Iterable[list]) -> Iterator[bytes]:
    # JSON is data, not a spreadsheet: values keep their types (lists, numbers, null) and are not neutralised.
    buffer = io.StringIO()
    for row in rows:
        buffer.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False, separators=(",", ":")))
        buffer.write("\n")
        if buffer.tell() >= BUFFER_SIZE:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _xlsx_chunks(header: list[str], columns: list[Column], rows: Iterable[list]) -> Iterator[bytes]:
    # constant_memory: each row goes to a temporary file as it is written; the zip is assembled at close.
    with tempfile.TemporaryFile() as file:
        workbook = xlsxwriter.Workbook(file, {"constant_memory": True})
        wrapped = workbook.add_format({"text_wrap": True, "valign": "top"})

        def new_sheet():
            count = len(workbook.worksheets())
            sheet = workbook.add_worksheet(f"customers {count + 1}" if count else "customers")
            for index, column in enumerate(columns):
                if column.multiline:
                    sheet.set_column(index, index, None, wrapped)
            sheet.freeze_panes(1, 0)
            for index, name in enumerate(header):
                sheet.write_string(0, index, _cell(name))
            return sheet

        sheet, line = new_sheet(), 1
        for row in rows:
            if line == XLSX_SHEET_ROWS:
                sheet, line = new_sheet(), 1
            # write_string, never write(): text is never turned into a formula, number or link.
            for index, value in enumerate(row):
                sheet.write_string(line, index, _cell(value))
            line += 1
        workbook.close()
        file.seek(0)
        while chunk := file.read(BUFFER_SIZE):
            yield chunk


@dataclass(frozen=True)
class _CustomerList:
    """The target of an export's audit event: a list of customers, not one."""

    pk: str = "*"


# The relations whose values are a contact model's field, for masking: the PI registry says how each is masked.
RELATION_FIELDS = {"phones": ("customers.phone", "number"), "emails": ("customers.email", "address")}


def _sensitive_kind(column: Column) -> str | None:
    """The MaskKind of a column that holds a sensitive field (from the PI registry), else None."""
    if column.reads in RELATION_FIELDS:
        info = field_info(*RELATION_FIELDS[column.reads])
    elif column.reads == "primary_address":
        info = field_info("customers.address", ADDRESS_COLUMNS[column.name])
    else:
        info = field_info("customers.customer", column.reads)
    return info.mask if info is not None and info.sensitive else None


class CustomerExport:
    """One export, ready to stream: `chunks()` yields the file; `rows` counts what was written."""

    def __init__(self, *, user, filters: CustomerFilter, fmt: str, fields, headers: str, progress=None):
        self.user, self.filters, self.fmt, self.headers, self.progress = user, filters, fmt, headers, progress
        self.columns = _choose(export_columns(), fields)
        self.rows = 0
        # Masked as on the pages: (column index, MaskKind) of the sensitive columns (cim.privacy.masking).
        self.policy = field_policy(user)
        self.sensitive = [(i, kind) for i, column in enumerate(self.columns) if (kind := _sensitive_kind(column))]

    @property
    def content_type(self) -> str:
        return FORMATS[self.fmt]

    @property
    def filename(self) -> str:
        return f"customers-{timezone.localtime():%Y%m%d-%H%M}.{self.fmt}"

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes. The audit event is written when the stream ends, even if it is cut short."""
        names = [column.name for column in self.columns]
        header = names if self.headers == "names" else [str(column.label) for column in self.columns]
        complete = False
        try:
            with replica_reads():
                if self.fmt == "csv":
                    yield from _csv_chunks(header, self._rows())
                elif self.fmt == "xlsx":
                    yield from _xlsx_chunks(header, self.columns, self._rows())
                else:
                    yield from _jsonl_chunks(names, self._rows())
            complete = True
        finally:
            self._audit(complete)

    def _rows(self) -> Iterator[list]:
        # Plain values, not model instances: building instances and related managers cost ten times more.
        reads = dict.fromkeys(column.reads for column in self.columns)
        relations = [name for name in reads if name in RELATIONS]
        names = [name for name in reads if name not in RELATIONS]
        # The list selector applies the user's record scope and the filters; its prefetches are for pages.
        names = list(dict.fromkeys([*names, "owner_id"]))  # whose customer it is decides the masking
        queryset = customer_list(user=self.user, filters=self.filters).prefetch_related(None).values("pk", *names)
        batch: list[dict] = []
        for record in queryset.iterator(chunk_size=CHUNK_ROWS):
            batch.append(record)
            if len(batch) == CHUNK_ROWS:
                yield from self._batch_rows(batch, relations)
                batch = []
        if batch:
            yield from self._batch_rows(batch, relations)

    def _batch_rows(self, batch: list[dict], relations: list[str]) -> Iterator[list]:
        ids = [record["pk"] for record in batch]
        found = {name: RELATIONS[name](ids) for name in relations}
        for record in batch:
            for name in relations:
                record[name] = found[name][record["pk"]]
            self.rows += 1
            row = [column.value(record) for column in self.columns]
            for i, kind in self.sensitive:
                if not self.policy.shows(kind, record["owner_id"]):
                    cell = row[i]
                    row[i] = [mask_value(kind, v) for v in cell] if isinstance(cell, list) else mask_value(kind, cell)
            yield row
        if self.progress:
            self.progress(len(batch))

    def _audit(self, complete: bool) -> None:
        filters = " ".join(
            name if name in FREE_TEXT_FILTERS else f"{name}={value}"
            for name, value in self.filters.model_dump(exclude_defaults=True).items()
        )
        note = f"format={self.fmt} rows={self.rows} headers={self.headers}"
        note += "" if complete else " incomplete"
        note += f" filters: {filters}" if filters else ""
        audit_record(
            actor=self.user,
            action="customer.export",
            target=_CustomerList(),
            target_type="customers.customer",
            fields=[column.name for column in self.columns],
            note=note,
        )


def customers_export_stream(
    *, user, filters: CustomerFilter, fmt: str = "csv", fields=None, headers: str = "names", progress=None
) -> CustomerExport:
    """Check and prepare an export; nothing is read until its `chunks()` are iterated.

    Raises PermissionDenied without the export right, ValidationError for an unknown format, header style or field.
    """
    if not has_perm(user, Perm.CUSTOMER_EXPORT):
        raise PermissionDenied(Perm.CUSTOMER_EXPORT)
    if fmt not in FORMATS:
        raise ValidationError({"format": [_("Select one of: %(choices)s.") % {"choices": ", ".join(FORMATS)}]})
    if headers not in HEADERS:
        raise ValidationError({"headers": [_("Select one of: %(choices)s.") % {"choices": ", ".join(HEADERS)}]})
    return CustomerExport(user=user, filters=filters, fmt=fmt, fields=fields, headers=headers, progress=progress)


def customers_export(
    *, user, filters: CustomerFilter, fmt: str = "csv", fields=None, headers: str = "names", out, progress=None
) -> int:
    """Write the customers `user` may see that match `filters` to the binary file `out`; return the row count."""
    export = customers_export_stream(
        user=user, filters=filters, fmt=fmt, fields=fields, headers=headers, progress=progress
    )
    for chunk in export.chunks():
        out.write(chunk)
    return export.rows
