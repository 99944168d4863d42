"""A logical copy of every table in JSON Lines, to move an installation between engines (SQLite → PostgreSQL).

Export: one `<app>.<model>.jsonl` per model, in foreign-key order, one JSON array of column values per row, read in
batches through the ORM's converters (so booleans, dates, decimals and JSON come out the same from every engine);
plus `manifest.json` with the order, the columns, the row counts, a checksum per table and the schema (last
migration of each app). Import: into a migrated, otherwise unused database; every imported table is emptied, then
filled in batches (COPY on PostgreSQL), in one transaction; sequences are reset, the search index rebuilt, and the
row counts and checksums read back from the target must equal the manifest's.

The checksum of a table is the sum of the SHA-256 of its lines, modulo 2^128: the same rows give the same sum in
any order (the engines sort text keys differently). Unlike dumpdata/loaddata, nothing builds a model instance per
row or holds a table in memory.
"""

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils.duration import duration_iso_string

from cim.core.bulk import insert_rows

FORMAT = 1
BATCH = 5000
MANIFEST = "manifest.json"
MOD = 1 << 128


class JsonlError(Exception):
    """The export folder does not fit this database; the message says why."""


# Tables the import fills by itself: the orders table's triggers mark every imported order's customer.
REBUILT = {"analytics.ordertotalsdue"}


def exported_models() -> list[type[models.Model]]:
    """Every table Django manages (auto-created many-to-many tables too), parents before the rows that name them;
    not those the import rebuilds."""
    found = [
        m
        for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped and m._meta.label_lower not in REBUILT
    ]
    found.sort(key=lambda m: m._meta.label_lower)
    ordered: list[type[models.Model]] = []
    done: set = set()
    visiting: set = set()

    def visit(model) -> None:
        if model in done or model in visiting:
            return  # a cycle: the foreign keys are checked at commit, so any order inside it works
        visiting.add(model)
        for field in model._meta.local_concrete_fields:
            target = field.related_model if field.is_relation else None
            if target is not None and target is not model and target in found:
                visit(target)
        visiting.discard(model)
        done.add(model)
        ordered.append(model)

    for model in found:
        visit(model)
    return ordered


def search_key_id() -> str:
    """A fingerprint of the search key: the phone and email match keys in the rows are HMACs under it, so both
    installations must share it (copy `search_key` from the old data dir, or set CIM_SEARCH_KEY)."""
    return hashlib.sha256(b"cim search key id\0" + settings.CIM_SEARCH_KEY.encode()).hexdigest()[:16]


def _search_documents_rebuild() -> None:
    """The search documents are engine-specific (FTS5 / tsvector) and not exported: built again from the rows."""
    from cim.customers.models import Customer
    from cim.search.services import search_index_update

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_document")
    search_index_update(customer_ids=Customer.objects.order_by("pk").values_list("pk", flat=True).iterator(BATCH))


def _fields(model) -> list[models.Field]:
    return [f for f in model._meta.local_concrete_fields if not getattr(f, "generated", False)]


def _plain(value):
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, timedelta):
        return duration_iso_string(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"cannot write {type(value).__name__}")


def _line(row: tuple) -> bytes:
    return json.dumps(row, default=_plain, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _lines(model) -> Iterator[bytes]:
    names = [f.attname for f in _fields(model)]
    rows = model._base_manager.order_by("pk").values_list(*names).iterator(chunk_size=BATCH)
    for row in rows:
        yield _line(row)


class _Tally:
    def __init__(self):
        self.rows, self.sum = 0, 0

    def add(self, line: bytes) -> None:
        self.rows += 1
        self.sum = (self.sum + int.from_bytes(hashlib.sha256(line).digest()[:16], "big")) % MOD

    @property
    def checksum(self) -> str:
        return f"{self.sum:032x}"


def table_tally(model) -> _Tally:
    tally = _Tally()
    for line in _lines(model):
        tally.add(line)
    return tally


def export_jsonl(folder: Path, *, progress=None) -> dict:
    """Write every table into `folder` (created; must be empty); returns the manifest."""
    from cim.backups.services import _migrations, engine_name

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise JsonlError(f"{folder} is not empty")
    tables = []
    with transaction.atomic():  # one consistent view of every table
        for model in exported_models():
            tally = _Tally()
            with (folder / f"{model._meta.label_lower}.jsonl").open("wb") as out:
                for line in _lines(model):
                    out.write(line)
                    tally.add(line)
            tables.append(
                {
                    "model": model._meta.label_lower,
                    "table": model._meta.db_table,
                    "columns": [f.attname for f in _fields(model)],
                    "rows": tally.rows,
                    "checksum": tally.checksum,
                }
            )
            if progress:
                progress(model._meta.label_lower, tally.rows)
    manifest = {
        "format": FORMAT,
        "engine": engine_name(),
        "migrations": _migrations(),
        "search_key_id": search_key_id(),
    }
    manifest["tables"] = tables
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def _batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _empty(models_: list[type[models.Model]]) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Checks still pending in this transaction would forbid TRUNCATE: run them now, defer the rest again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(f"TRUNCATE {', '.join(quote(m._meta.db_table) for m in models_)} RESTART IDENTITY CASCADE")
        else:
            for model in reversed(models_):
                cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")


def import_jsonl(folder: Path, *, progress=None) -> dict:
    """Replace every table's rows by the export's in `folder`; returns {model: rows}. Raises JsonlError when the
    schema differs or when a table read back does not match the manifest (and then nothing is changed)."""
    from cim.backups.services import _migrations

    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise JsonlError(f"unknown export format {manifest.get('format')}")
    if manifest["migrations"] != _migrations():
        raise JsonlError("the export's schema (migrations) differs from this database's: run `cim migrate` on both")
    if manifest["search_key_id"] != search_key_id():
        raise JsonlError(
            "the search key differs from the exporting installation's: copy its data dir's `search_key` file "
            "(or its CIM_SEARCH_KEY) here first, or phone and email search and duplicate checks would find nothing"
        )
    by_label = {m._meta.label_lower: m for m in exported_models()}
    missing = [t["model"] for t in manifest["tables"] if t["model"] not in by_label]
    if missing:
        raise JsonlError(f"models unknown here: {', '.join(missing)}")
    targets = [by_label[t["model"]] for t in manifest["tables"]]
    imported = {}
    with transaction.atomic():
        _empty(targets)
        for table, model in zip(manifest["tables"], targets, strict=True):
            fields = {f.attname: f for f in _fields(model)}
            if set(table["columns"]) != set(fields):
                raise JsonlError(f"{table['model']}: columns differ from this database's")
            columns = [fields[name] for name in table["columns"]]
            with (folder / f"{table['model']}.jsonl").open("rb") as handle:
                for batch in _batches(handle, BATCH):
                    rows = [_prepare(columns, json.loads(line)) for line in batch]
                    insert_rows(model, table["columns"], rows)
            imported[table["model"]] = table["rows"]
            if progress:
                progress(table["model"], table["rows"])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for statement in connection.ops.sequence_reset_sql(no_style(), targets):
                    cursor.execute(statement)
        for table, model in zip(manifest["tables"], targets, strict=True):
            tally = table_tally(model)
            if (tally.rows, tally.checksum) != (table["rows"], table["checksum"]):
                raise JsonlError(
                    f"{table['model']}: read back {tally.rows} rows, checksum {tally.checksum}; "
                    f"the export has {table['rows']}, {table['checksum']}"
                )
        _search_documents_rebuild()
    return imported


def _prepare(columns: list[models.Field], values: list) -> tuple:
    return tuple(
        None if value is None else field.get_db_prep_save(field.to_python(value), connection)
        for field, value in zip(columns, values, strict=True)
    )
