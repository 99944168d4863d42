"""Importing customers from files: every write of an import job.

A job reads its file in batches. Each batch is one transaction that also moves the job's checkpoint, so a job
killed midway leaves whole batches behind and resumes after the last one; nothing is ever half-written.
A dry run is the same work inside a savepoint that is rolled back: its counts are what the import will do.

Rows that name an existing customer (by external id or customer number) update it. Rows whose phone or email
belong to an existing customer, or to an earlier row, are created as separate customers and flagged for review,
unless the job says to update matches: nothing is merged without a person's decision.
"""

import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import Team, User
from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record, audit_record_bulk
from cim.core.bulk import insert_rows, value_adapter
from cim.customers.models import Address, Customer, CustomerTag, Email, ExternalId, Phone
from cim.customers.numbering import is_valid_number, normalize_number, numbers_allocate
from cim.customers.schemas import CustomerInput
from cim.customers.services import PermissionDenied, customer_input_clean, customer_update, tags_by_name
from cim.ingest.customer_rows import Lookups, RowInput, row_input
from cim.ingest.mapping import auto_map, mapping_errors
from cim.ingest.models import ImportJob, ImportMapping, ImportRowError
from cim.ingest.readers import FileProblem, RowProblem, open_table
from cim.quality.models import DuplicateCandidate
from cim.search.services import search_index_update

BATCH_ROWS = 1000
DEFAULT_SYSTEM = "import"
# Rows go in as plain tuples (cim.core.bulk): model instances would cost more than everything else here.
CUSTOMER_COLUMNS = [(f.attname, value_adapter(f)) for f in Customer._meta.concrete_fields if not f.primary_key]
CUSTOMER_DEFAULTS = {f.attname: f.get_default() for f in Customer._meta.concrete_fields if not f.primary_key}
CONTACT_COLUMNS = {
    Phone: ["kind", "number", "raw", "match_key", "is_primary", "is_verified"],
    Email: ["kind", "address", "raw", "match_key", "is_primary", "is_verified"],
    Address: ["kind", "country", "province", "city", "district", "street", "postal_code", "is_primary", "is_verified"],
}
CHILD_COLUMNS = {
    **{model: ["customer", *columns, "created_at"] for model, columns in CONTACT_COLUMNS.items()},
    CustomerTag: ["customer", "tag", "added_at", "added_by"],
    ExternalId: ["customer", "system", "value", "created_at"],
}


@dataclass
class ImportCounts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    possible_duplicates: int = 0


@dataclass
class _NewCustomer:
    """A row that will become a new customer, validated, with the customers it looks like."""

    row: int
    found: RowInput
    values: dict
    contacts: dict
    lookalikes: list[tuple[int, str]]  # (customer id, or minus an earlier row's number; reason)


class _DryRunDone(Exception):
    """Raised to roll back a dry-run batch."""


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
) -> ImportJob:
    """Keep a copy of the file and read its columns; raises ValidationError when it cannot be read or mapped."""
    if actor is not None and not has_perm(actor, Perm.CUSTOMER_IMPORT):
        raise PermissionDenied(Perm.CUSTOMER_IMPORT)
    try:
        table = open_table(path, filename)
    except FileProblem as problem:
        raise ValidationError({"file": [str(problem)]}) from None
    mapping = dict(mapping) if mapping is not None else auto_map(table.columns)
    problems = mapping_errors(mapping, table.columns)
    if problems:
        raise ValidationError({"mapping": problems})
    stored = _imports_dir() / uuid.uuid4().hex / "upload"
    stored.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, stored)
    job = ImportJob.objects.create(
        file=str(stored.relative_to(settings.MEDIA_ROOT)),
        filename=filename[:255],
        sha256=file_sha256(path),
        file_format=table.file_format,
        encoding=table.encoding,
        headers=table.columns,
        mapping=mapping,
        source=source[:50],
        source_channel=source_channel,
        update_existing=update_existing,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_record(
        actor=actor, action="import.create", target=job, note=f"{job.file_format}, {len(table.columns)} columns"
    )
    return job


def import_job_remap(*, job: ImportJob, mapping: dict[str, str], actor) -> ImportJob:
    """Change the mapping of a job that has not started importing; forgets an earlier dry run."""
    if (
        job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED, ImportJob.Status.FAILED)
        or job.rows_done
    ):
        raise ValidationError({"mapping": [_("This import has started; its mapping can no longer change.")]})
    problems = mapping_errors(mapping, job.headers)
    if problems:
        raise ValidationError({"mapping": problems})
    job.mapping = mapping
    job.status = ImportJob.Status.UPLOADED
    job.dry_run_counts = {}
    job.save(update_fields=["mapping", "status", "dry_run_counts"])
    audit_record(actor=actor, action="import.remap", target=job, fields=["mapping"])
    return job


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


def _hashes(contacts: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """Match keys of a row's valid, normalised phones and emails, with the duplicate reason each gives."""
    phone, email = DuplicateCandidate.Reason.SAME_PHONE, DuplicateCandidate.Reason.SAME_EMAIL
    return [(p["match_key"], phone) for p in contacts.get("phones", [])] + [
        (e["match_key"], email) for e in contacts.get("emails", [])
    ]


class _Importer:
    """The state one run of a job carries from batch to batch."""

    def __init__(self, job: ImportJob, actor, dry_run: bool):
        self.job = job
        self.actor = actor
        self.dry_run = dry_run
        self.system = job.source or DEFAULT_SYSTEM
        self.lookups = Lookups()
        self.users = dict(User.objects.values_list("username", "pk"))
        self.teams = dict(Team.objects.values_list("name", "pk"))
        # Customers made by this job are matched as "earlier rows", not as existing customers.
        self.first_new_id = (Customer.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
        self.seen_contacts: dict[str, int] = {}  # hashed phone/email → the row that had it first
        self.seen_external: dict[str, int] = {}  # external id → its row
        self.rows_made: dict[int, int] = {}  # row → the customer made from it, for rows with phones or emails
        self.counts = ImportCounts(**(job.counts if not dry_run else {}))

    def run_batch(self, batch: list[tuple[int, dict | RowProblem]]) -> None:
        errors: list[ImportRowError] = []
        counts = ImportCounts()
        try:
            with transaction.atomic():
                self._write(batch, errors, counts)
                if self.dry_run:
                    raise _DryRunDone
                ImportRowError.objects.bulk_create(errors)
                self._checkpoint(batch[-1][0], counts)
        except _DryRunDone:
            ImportRowError.objects.bulk_create(errors)
        for name, value in asdict(counts).items():
            setattr(self.counts, name, getattr(self.counts, name) + value)

    def _reject(self, errors: list, counts: ImportCounts, row: int, problems: list[tuple[str, str]]) -> None:
        counts.rejected += 1
        errors += [
            ImportRowError(job=self.job, dry_run=self.dry_run, row=row, column=column[:200], message=message[:500])
            for column, message in problems
        ]

    def _write(self, batch, errors: list, counts: ImportCounts) -> None:
        counts.rows = len(batch)
        inputs: list[tuple[int, RowInput, tuple]] = []
        for number, record in batch:
            if isinstance(record, RowProblem):
                self._reject(errors, counts, number, [("", record.message)])
                continue
            found = row_input(record, self.job.mapping, self.lookups, source_channel=self.job.source_channel)
            cleaned = None
            if found.data is not None:
                cleaned = customer_input_clean(found.data, definitions=self.lookups.definitions)
            if found.errors:
                # Every problem of the row at once, not one per attempt.
                found.errors += [(self._column(k), " ".join(m)) for k, m in cleaned[2].items()] if cleaned else []
                self._reject(errors, counts, number, found.errors)
                continue
            inputs.append((number, found, cleaned))
        by_external = dict(
            ExternalId.objects.filter(
                system=self.system, value__in=[f.external_id for _, f, _c in inputs if f.external_id]
            ).values_list("value", "customer_id")
        )
        numbers = [normalize_number(f.number) for _, f, _c in inputs if f.number]
        by_number = dict(Customer.objects.filter(number__in=numbers).values_list("number", "pk"))
        existing = {c.pk: c for c in Customer.objects.filter(pk__in=[*by_external.values(), *by_number.values()])}
        creates: list[_NewCustomer] = []
        contact_hashes = [h for _, _f, (_v, contacts, _p) in inputs for h, _r in _hashes(contacts)]
        owners_of_hash: dict[str, set[int]] = {}
        for model in (Phone, Email):
            holders = model.objects.filter(match_key__in=contact_hashes, customer_id__lt=self.first_new_id)
            for key, customer_id in holders.order_by().values_list("match_key", "customer_id"):
                owners_of_hash.setdefault(key, set()).add(customer_id)
        for number, found, (values, contacts, problems) in inputs:
            if found.external_id and found.external_id in self.seen_external:
                problem = _("The same external id is on row %(row)s.") % {"row": self.seen_external[found.external_id]}
                self._reject(errors, counts, number, [(self._column("external_id"), problem)])
                continue
            if found.external_id:
                self.seen_external[found.external_id] = number
            if found.number and not is_valid_number(normalize_number(found.number)):
                self._reject(
                    errors, counts, number, [(self._column("number"), _("This is not a valid customer number."))]
                )
                continue
            current_id = by_external.get(found.external_id) or by_number.get(normalize_number(found.number))
            hashes = _hashes(contacts)
            matches = sorted({cid for h, _r in hashes for cid in owners_of_hash.get(h, ())})
            if current_id is None and self.job.update_existing and len(matches) == 1:
                current_id = matches[0]
                if current_id not in existing:
                    existing[current_id] = Customer.objects.get(pk=current_id)
            owner_problem = self._owner_problem(found)
            if owner_problem:
                self._reject(errors, counts, number, [owner_problem])
                continue
            if current_id is not None:
                self._update(existing[current_id], found, number, errors, counts)
                continue
            if problems:
                self._reject(errors, counts, number, [(self._column(k), " ".join(m)) for k, m in problems.items()])
                continue
            earlier_rows = {h: self.seen_contacts[h] for h, _r in hashes if h in self.seen_contacts}
            for h, _r in hashes:
                self.seen_contacts.setdefault(h, number)
            lookalikes = [(cid, reason) for h, reason in hashes for cid in owners_of_hash.get(h, ())]
            lookalikes += [(-row, reason) for h, reason in hashes if (row := earlier_rows.get(h))]
            if lookalikes:
                counts.possible_duplicates += 1
            creates.append(_NewCustomer(number, found, values, contacts, lookalikes))
        if creates:
            self._create(creates, counts)

    def _column(self, target: str) -> str:
        """The file column a field came from, for error reports (`phones.0.number` → the phone column)."""
        head = target.split(".", 1)[0]
        if head == "custom_fields":
            head = "cf." + target.split(".")[1]
        if head == "owner_id":
            head = "owner"
        if head == "addresses":
            head = "address"
        return next((column for column, t in self.job.mapping.items() if t == head or t.startswith(head + "_")), head)

    def _owner_problem(self, found: RowInput) -> tuple[str, str] | None:
        if found.owner and found.owner not in self.users:
            return self._column("owner"), _("There is no user with this user name.")
        if found.team and found.team not in self.teams:
            return self._column("team"), _("There is no team with this name.")
        return None

    def _update(self, customer: Customer, found: RowInput, number: int, errors: list, counts: ImportCounts) -> None:
        # Cells left empty leave stored values alone (row_input only passes filled ones): a sparse file must not
        # wipe what other channels collected. The job's default channel does not relabel existing customers.
        values = {name: getattr(found.data, name) for name in found.data.model_fields_set}
        if "source_channel" not in self.job.mapping.values():
            values.pop("source_channel", None)
        if found.owner:
            values["owner_id"] = self.users[found.owner]
        if found.team:
            values["team_id"] = self.teams[found.team]
        before = customer.updated_at
        try:
            with transaction.atomic():
                customer_update(customer=customer, data=CustomerInput(**values), actor=self.actor)
                if found.external_id:
                    ExternalId.objects.get_or_create(
                        system=self.system, value=found.external_id, defaults={"customer": customer}
                    )
        except ValidationError as error:
            problems = [(self._column(k), " ".join(m)) for k, m in error.message_dict.items()]
            self._reject(errors, counts, number, problems)
            return
        if customer.updated_at != before:
            counts.updated += 1
        else:
            counts.unchanged += 1

    def _create(self, creates: list["_NewCustomer"], counts: ImportCounts) -> None:
        """Insert the batch's new customers and everything hanging off them in set-based statements."""
        now = timezone.now()
        actor = self.actor if self.actor is not None and self.actor.is_authenticated else None
        numbers = numbers_allocate(len(creates))
        customers = []
        for new, customer_number in zip(creates, numbers, strict=True):
            values = {**CUSTOMER_DEFAULTS, **new.values, "number": customer_number, "created_by_id": actor and actor.pk}
            if new.found.owner:
                values["owner_id"] = self.users[new.found.owner]
            elif actor:
                values["owner_id"], values["team_id"] = actor.pk, actor.team_id
            if new.found.team:
                values["team_id"] = self.teams[new.found.team]
            values["created_at"] = values["updated_at"] = now
            customers.append(tuple(adapt(values[name]) for name, adapt in CUSTOMER_COLUMNS))
        insert_rows(Customer, [name for name, _adapt in CUSTOMER_COLUMNS], customers)
        id_of = dict(Customer.objects.filter(number__in=numbers).values_list("number", "pk"))
        ids = [id_of[number] for number in numbers]
        tag_ids = {t.name: t.pk for t in tags_by_name({name for new in creates for name in new.found.data.tags})}
        stamp = value_adapter(Phone._meta.get_field("created_at"))(now)
        rows: dict[type, list] = {Phone: [], Email: [], Address: [], CustomerTag: [], ExternalId: []}
        lookalikes = []
        for customer_id, new in zip(ids, creates, strict=True):
            if new.contacts.get("phones") or new.contacts.get("emails"):
                self.rows_made[new.row] = customer_id
            for model, key in ((Phone, "phones"), (Email, "emails"), (Address, "addresses")):
                columns = CONTACT_COLUMNS[model]
                rows[model] += [(customer_id, *(c[name] for name in columns), stamp) for c in new.contacts.get(key, [])]
            rows[CustomerTag] += [
                (customer_id, tag_ids[name], stamp, actor and actor.pk) for name in dict.fromkeys(new.found.data.tags)
            ]
            if new.found.external_id:
                rows[ExternalId].append((customer_id, self.system, new.found.external_id, stamp))
            for other, reason in new.lookalikes:
                # Negative: an earlier row of this file; the customer made from it, if it is still known.
                other_id = self.rows_made.get(-other) if other < 0 else other
                if other_id and other_id != customer_id:
                    lookalikes.append(
                        DuplicateCandidate(
                            customer_id=customer_id,
                            other_id=other_id,
                            reason=reason,
                            detected_by=f"import:{self.job.pk}",
                        )
                    )
        for model, columns in CHILD_COLUMNS.items():
            insert_rows(model, columns, rows[model])
        DuplicateCandidate.objects.bulk_create(lookalikes, batch_size=1000, ignore_conflicts=True)
        search_index_update(customer_ids=ids)
        audit_record_bulk(
            actor=actor,
            action="customer.import",
            target_type="customers.customer",
            target_ids=ids,
            note=f"import {self.job.pk}",
        )
        counts.created += len(ids)

    def _checkpoint(self, last_row: int, counts: ImportCounts) -> None:
        total = ImportCounts(**self.job.counts)
        for name, value in asdict(counts).items():
            setattr(total, name, getattr(total, name) + value)
        self.job.rows_done = last_row
        self.job.counts = asdict(total)
        self.job.save(update_fields=["rows_done", "counts"])


def import_run(
    *, job: ImportJob, actor, dry_run: bool = False, progress: Callable[[int], None] | None = None
) -> ImportCounts:
    """Import (or, with `dry_run`, only count) the rows of `job` after its checkpoint. Returns the counts."""
    if actor is not None and not has_perm(actor, Perm.CUSTOMER_IMPORT):
        raise PermissionDenied(Perm.CUSTOMER_IMPORT)
    if job.status == ImportJob.Status.DONE:
        return ImportCounts(**job.counts)
    try:
        table = open_table(Path(settings.MEDIA_ROOT) / job.file, job.filename)
    except FileProblem as problem:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, message=str(problem)[:500])
        raise ValidationError({"file": [str(problem)]}) from None
    job.status = ImportJob.Status.CHECKING if dry_run else ImportJob.Status.RUNNING
    job.save(update_fields=["status"])
    if dry_run:
        ImportRowError.objects.filter(job=job, dry_run=True).delete()
    importer = _Importer(job, actor, dry_run)
    for batch in _batches(table.rows, 0 if dry_run else job.rows_done):
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
