"""The engine of an import run. Rows are prepared (mapped, validated, normalised, tokenised: pure CPU) in a second
process while this one writes the batch before; each batch is one transaction together with the job's
checkpoint, and a dry run is the same work in a savepoint that is rolled back.

Rows that name an existing customer (by external id or customer number) update it. Rows whose phone or email
belong to an existing customer, or to an earlier row, are created as separate customers and flagged for review,
unless the job says to update matches: nothing is merged without a person's decision.
"""

import hashlib
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from operator import itemgetter
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import Team, User
from cim.audit.services import audit_record_bulk
from cim.core.background import in_other_processes
from cim.core.bulk import LOOKUP_CHUNK, column_lookup, insert_rows, value_adapter
from cim.customers.models import Address, Customer, CustomerTag, Email, ExternalId, Phone
from cim.customers.numbering import is_valid_number, normalize_number, numbers_allocate
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_input_clean, customer_update, tags_by_name
from cim.ingest.customer_rows import Lookups, row_input
from cim.ingest.models import ImportJob, ImportRowError
from cim.ingest.readers import RowProblem
from cim.quality.matching import match_name
from cim.quality.models import DuplicateCandidate
from cim.quality.normalize import clean_text
from cim.search.services import NAME_FIELDS, search_documents_write, search_names
from cim.search.tokens import document

# Below this size a file is prepared in this process: forking costs more than it saves.
PARALLEL_BYTES = 1024**2
DEFAULT_SYSTEM = "import"
# Rows go in as plain tuples (cim.core.bulk): model instances would cost more than everything else here.
CUSTOMER_COLUMNS = [(f.attname, value_adapter(f)) for f in Customer._meta.concrete_fields if not f.primary_key]
CUSTOMER_DEFAULTS = {f.attname: f.get_default() for f in Customer._meta.concrete_fields if not f.primary_key}
CUSTOMER_NAMES = [name for name, _adapt in CUSTOMER_COLUMNS]
CUSTOMER_VALUES = itemgetter(*CUSTOMER_NAMES)


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def _adapted(field) -> bool:
    """Only dates, JSON and encrypted fields need adapting (see value_adapter); the rest go in as they are."""
    return field.get_internal_type() in ("DateField", "JSONField") or getattr(field, "encrypted", False)


ADAPTED_COLUMNS = [
    (f.attname, value_adapter(f))
    for f in Customer._meta.concrete_fields
    if _adapted(f) and f.attname not in ("created_at", "updated_at")
]
# Columns computed from others on save (blind indexes, the birthday's year and month): bulk paths skip save().
DERIVED_FIELDS = [f for f in Customer._meta.concrete_fields if hasattr(f, "source")]
CONTACT_COLUMNS = {
    Phone: ["kind", "number", "raw", "match_key", "is_primary", "is_verified"],
    Email: ["kind", "address", "raw", "match_key", "is_primary", "is_verified"],
    Address: [
        *("kind", "country", "province", "city", "district", "street", "postal_code", "adcode"),
        *("is_primary", "is_verified"),
    ],
}
CONTACT_VALUES = {model: itemgetter(*columns) for model, columns in CONTACT_COLUMNS.items()}
# Encryption happens here, in the preparing process: the writer gets ciphertext only. Choices go as plain values,
# not enum members (`kind`): unpickling members costs more than the rest of the row.
CONTACT_ADAPTERS = {
    model: [
        (position, value_adapter(field) if _adapted(field) else _plain)
        for position, field in enumerate(model._meta.get_field(name) for name in columns)
        if _adapted(field) or field.choices
    ]
    for model, columns in CONTACT_COLUMNS.items()
}
CHILD_COLUMNS = {
    **{model: ["customer", *columns, "created_at"] for model, columns in CONTACT_COLUMNS.items()},
    CustomerTag: ["customer", "tag", "added_at", "added_by"],
    ExternalId: ["customer", "system", "value", "created_at"],
}
Problems = list[tuple[str, str]]  # (file column, message)
SET_ON_INSERT_AT = [
    CUSTOMER_NAMES.index(name)
    for name in ("number", "owner_id", "team_id", "created_by_id", "created_at", "updated_at")
]
MATCH_KEY = CONTACT_COLUMNS[Phone].index("match_key")
SAME_PHONE, SAME_EMAIL = DuplicateCandidate.Reason.SAME_PHONE.value, DuplicateCandidate.Reason.SAME_EMAIL.value


@dataclass
class ImportCounts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    possible_duplicates: int = 0
    lines: int = 0  # order lines written, by an order import

    def add(self, other: "ImportCounts") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class DryRunDone(Exception):
    """Raised to roll back a dry-run batch."""


class BatchImporter:
    """The state one run of an import carries from batch to batch. `preparer(job)` turns a batch of rows into
    prepared rows without the database (in other processes for big files); `_write` writes a batch of them, in
    one transaction with the job's checkpoint, so that a killed import resumes after its last whole batch."""

    preparer: Callable[[ImportJob], Callable[[list], list]]

    def __init__(self, job: ImportJob, actor, dry_run: bool):
        self.job = job
        self.actor = actor if actor is not None and actor.is_authenticated else None
        self.dry_run = dry_run
        self.system = job.source or DEFAULT_SYSTEM
        self.counts = ImportCounts(**(job.counts if not dry_run else {}))

    def prepared_batches(self, batches: Iterator[list], *, file_bytes: int) -> Iterator[list]:
        preparer = self.preparer(self.job)
        if file_bytes < PARALLEL_BYTES:
            return map(preparer, batches)
        return in_other_processes(batches, preparer)

    def run_batch(self, batch: list) -> None:
        errors: list[ImportRowError] = []
        counts = ImportCounts(rows=len(batch))
        try:
            with transaction.atomic():
                self._write(batch, errors, counts)
                if self.dry_run:
                    raise DryRunDone
                ImportRowError.objects.bulk_create(errors)
                total = ImportCounts(**self.job.counts)
                total.add(counts)
                self.job.rows_done = self._row_of(batch[-1])
                self.job.counts = asdict(total)
                self.job.save(update_fields=["rows_done", "counts"])
        except DryRunDone:
            ImportRowError.objects.bulk_create(errors)
        self.counts.add(counts)

    def _row_of(self, prepared) -> int:
        """The file row a prepared row came from: its first item."""
        return prepared[0]

    def _write(self, batch: list, errors: list, counts: ImportCounts) -> None:
        raise NotImplementedError

    def _reject(self, errors: list, counts: ImportCounts, row: int, problems) -> None:
        counts.rejected += 1
        errors += [
            ImportRowError(job=self.job, dry_run=self.dry_run, row=row, column=column[:200], message=str(message)[:500])
            for column, message in problems
        ]


@dataclass(slots=True)
class PreparedRow:
    """One row after the CPU work, in the plain shapes that cross to the writing process cheaply: refused
    (`errors`), or insert-ready tuples, the names that find an existing customer, and its search document.
    `problems` refuse the row only if it creates a customer. A row that updates one is mapped again from its
    `record`, in the writing process: few rows do, and the input would cost more to send than to remake."""

    row: int
    errors: Problems = ()
    problems: Problems = ()
    customer: tuple = ()  # CUSTOMER_COLUMNS order, adapted; the writer fills in SET_ON_INSERT_AT
    children: tuple = ()  # (Phone rows, Email rows, Address rows) in CONTACT_COLUMNS order
    tags: tuple = ()
    external_id: str = ""
    number: str = ""
    owner: str = ""
    team: str = ""
    keys: tuple = ()  # (match key, duplicate reason) of each phone and email
    document: str = ""
    record: dict | None = None


def file_column(mapping: dict[str, str], target: str) -> str:
    """The file column a field came from, for error reports (`phones.0.number` → the phone column)."""
    head = target.split(".", 1)[0]
    if head == "custom_fields":
        head = "cf." + target.split(".")[1]
    head = {"owner_id": "owner", "addresses": "address"}.get(head, head)
    return next((column for column, t in mapping.items() if t == head or t.startswith(head + "_")), head)


class RowPreparer:
    """Everything a row needs before the database: no queries, so it can run in another process."""

    def __init__(self, job: ImportJob):
        self.mapping = job.mapping
        self.source_channel = job.source_channel
        self.lookups = Lookups()

    def __call__(self, batch: list[tuple[int, dict | RowProblem]]) -> list[PreparedRow]:
        return [self.prepare(number, record) for number, record in batch]

    def prepare(self, number: int, record: dict | RowProblem) -> PreparedRow:
        if isinstance(record, RowProblem):
            return PreparedRow(number, errors=[("", record.message)])
        found = row_input(record, self.mapping, self.lookups, source_channel=self.source_channel)
        lookups = self.lookups
        cleaned = (
            customer_input_clean(found.data, definitions=lookups.definitions, required=lookups.required)
            if found.data
            else None
        )
        if found.errors:
            # Every problem of the row at once, not one per attempt.
            problems = [(file_column(self.mapping, k), " ".join(m)) for k, m in cleaned[2].items()] if cleaned else []
            return PreparedRow(number, errors=found.errors + problems)
        values, contacts, problems = cleaned
        prepared = PreparedRow(
            number,
            record=record,
            problems=[(file_column(self.mapping, k), " ".join(m)) for k, m in problems.items()],
            # Named as `tags_by_name` names them (NFKC, spacing collapsed): ＶＩＰ and VIP are one tag.
            tags=tuple(dict.fromkeys(name for name in map(clean_text, found.data.tags) if name)),
            external_id=found.external_id,
            number=found.number,
            owner=found.owner,
            team=found.team,
        )
        if not prepared.problems:
            values = {**CUSTOMER_DEFAULTS, **values, "match_name": match_name(values["display_name"])}
            plain = SimpleNamespace(**values)
            for derived in DERIVED_FIELDS:
                values[derived.attname] = derived.pre_save(plain, True)
            for name, adapt in ADAPTED_COLUMNS:
                values[name] = adapt(values[name])
            prepared.customer = CUSTOMER_VALUES(values)
            prepared.children = tuple(
                [_contact_row(model, row) for row in contacts.get(key, [])]
                for model, key in ((Phone, "phones"), (Email, "emails"), (Address, "addresses"))
            )
            phones, emails, _addresses = prepared.children
            prepared.keys = tuple((p[MATCH_KEY], SAME_PHONE) for p in phones) + tuple(
                (e[MATCH_KEY], SAME_EMAIL) for e in emails
            )
            prepared.document = document(
                names=search_names(SimpleNamespace(**{name: values[name] for name in NAME_FIELDS})),
                phones=[p["number"] for p in contacts.get("phones", [])],
                emails=[e["address"] for e in contacts.get("emails", [])],
            )
        return prepared


def _contact_row(model, row: dict) -> tuple:
    values = list(CONTACT_VALUES[model](row))
    for position, adapt in CONTACT_ADAPTERS[model]:
        values[position] = adapt(values[position])
    return tuple(values)


def _compact(key: str) -> int:
    """64 bits of a value (signed, as SQLite's integers are), to remember millions of them in little space."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class SeenKeys:
    """Keys met so far in a file, each with the row where it first appeared. They live in a private temporary
    SQLite file, not in a dict, so that memory stays flat however many millions of rows the file has."""

    def __init__(self):
        # "" opens a private database on disk, deleted when closed; closed by whichever thread collects this object.
        self._db = sqlite3.connect("", check_same_thread=False)
        weakref.finalize(self, self._db.close)
        self._db.execute("CREATE TABLE seen (key INTEGER PRIMARY KEY, row INTEGER NOT NULL)")

    def add(self, keyed_rows: Iterable[tuple[int, int]]) -> None:
        """Remember each (key, row); a key met before keeps its first row."""
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", keyed_rows)

    def first_rows(self, keys: list[int]) -> dict[int, int]:
        """The row where each of `keys` first appeared, for those met so far."""
        found: dict[int, int] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT key, row FROM seen WHERE key IN ({marks})", chunk))
        return found


class Importer(BatchImporter):
    """The state one run of a customer import carries from batch to batch."""

    preparer = RowPreparer

    def __init__(self, job: ImportJob, actor, dry_run: bool):
        super().__init__(job, actor, dry_run)
        self.users = dict(User.objects.values_list("username", "pk"))
        self.teams = dict(Team.objects.values_list("name", "pk"))
        # Customers made by this job are "earlier rows", never existing customers to update.
        self.first_new_id = (Customer.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
        self.seen_external = SeenKeys()
        # A dry run writes nothing, so the contacts of earlier batches are remembered instead of looked up.
        self.seen_contacts = SeenKeys()

    def _row_of(self, prepared: PreparedRow) -> int:
        return prepared.row

    def _column(self, target: str) -> str:
        return file_column(self.job.mapping, target)

    def _holders(self, keys: list[str]) -> dict[str, set[int]]:
        """The customers already holding each phone or email match key, this job's earlier batches included."""
        holders: dict[str, set[int]] = {}
        for model in (Phone, Email):
            for key, customer_id in column_lookup(model, "match_key", "customer", keys):
                holders.setdefault(key, set()).add(customer_id)
        return holders

    def _write(self, batch: list[PreparedRow], errors: list, counts: ImportCounts) -> None:
        inputs = []
        for prepared in batch:
            if prepared.errors:
                self._reject(errors, counts, prepared.row, prepared.errors)
            else:
                inputs.append(prepared)
        external_ids = [p.external_id for p in inputs if p.external_id]
        by_external = dict(column_lookup(ExternalId, "value", "customer", external_ids, system=self.system))
        numbers = [normalize_number(p.number) for p in inputs if p.number]
        by_number = dict(column_lookup(Customer, "number", "id", numbers))
        existing = {c.pk: c for c in Customer.objects.filter(pk__in=[*by_external.values(), *by_number.values()])}
        holders = self._holders([key for p in inputs for key, _reason in p.keys])
        external_keys = {p.row: _compact(p.external_id) for p in inputs if p.external_id}
        self.seen_external.add((key, row) for row, key in external_keys.items())
        first_rows = self.seen_external.first_rows(list(external_keys.values()))
        if self.dry_run:
            contact_keys = {key: _compact(key) for p in inputs for key, _reason in p.keys}
            contacts_before = self.seen_contacts.first_rows(list(contact_keys.values()))
        creates: list[_NewCustomer] = []
        in_batch: dict[str, int] = {}  # match key → the create of this batch that had it first
        for prepared in inputs:
            if prepared.external_id:
                seen = first_rows[external_keys[prepared.row]]
                if seen != prepared.row:
                    problem = _("The same external id is on row %(row)s.") % {"row": seen}
                    self._reject(errors, counts, prepared.row, [(self._column("external_id"), problem)])
                    continue
            if prepared.number and not is_valid_number(normalize_number(prepared.number)):
                problem = _("This is not a valid customer number.")
                self._reject(errors, counts, prepared.row, [(self._column("number"), problem)])
                continue
            current_id = by_external.get(prepared.external_id) or by_number.get(normalize_number(prepared.number))
            keys = prepared.keys
            if current_id is None and self.job.update_existing:
                matches = {cid for key, _r in keys for cid in holders.get(key, ()) if cid < self.first_new_id}
                if len(matches) == 1:
                    current_id = matches.pop()
                    existing.setdefault(current_id, Customer.objects.get(pk=current_id))
            owner_problem = self._owner_problem(prepared)
            if owner_problem:
                self._reject(errors, counts, prepared.row, [owner_problem])
                continue
            if current_id is not None:
                self._update(existing[current_id], prepared, errors, counts)
                continue
            if prepared.problems:
                self._reject(errors, counts, prepared.row, prepared.problems)
                continue
            new = _NewCustomer(prepared)
            for key, reason in keys:
                new.lookalikes += [(cid, reason) for cid in holders.get(key, ())]
                if key in in_batch:
                    new.lookalikes_in_batch.append((in_batch[key], reason))
                in_batch.setdefault(key, len(creates))
                if self.dry_run and contact_keys[key] in contacts_before:
                    new.lookalikes.append((0, reason))
            if new.lookalikes or new.lookalikes_in_batch:
                counts.possible_duplicates += 1
            creates.append(new)
        if self.dry_run:
            self.seen_contacts.add(
                (contact_keys[key], new.prepared.row) for new in creates for key, _r in new.prepared.keys
            )
        if creates:
            self._create(creates, counts)

    def _owner_problem(self, prepared: PreparedRow) -> tuple[str, str] | None:
        if prepared.owner and prepared.owner not in self.users:
            return self._column("owner"), _("There is no user with this user name.")
        if prepared.team and prepared.team not in self.teams:
            return self._column("team"), _("There is no team with this name.")
        return None

    def _update(self, customer: Customer, prepared: PreparedRow, errors: list, counts: ImportCounts) -> None:
        # Cells left empty leave stored values alone (row_input only passes filled ones): a sparse file must not
        # wipe what other channels collected. The job's default channel does not relabel existing customers.
        data = row_input(prepared.record, self.job.mapping, Lookups(), source_channel=self.job.source_channel).data
        values = {name: getattr(data, name) for name in data.model_fields_set}
        if "source_channel" not in self.job.mapping.values():
            values.pop("source_channel", None)
        if prepared.owner:
            values["owner_id"] = self.users[prepared.owner]
        if prepared.team:
            values["team_id"] = self.teams[prepared.team]
        before = customer.updated_at
        try:
            with transaction.atomic():
                customer_update(customer=customer, data=CustomerInput(**values), actor=self.actor)
                if prepared.external_id:
                    ExternalId.objects.get_or_create(
                        system=self.system, value=prepared.external_id, defaults={"customer": customer}
                    )
        except ValidationError as error:
            problems = [(self._column(k), " ".join(m)) for k, m in error.message_dict.items()]
            self._reject(errors, counts, prepared.row, problems)
            return
        if customer.updated_at != before:
            counts.updated += 1
        else:
            counts.unchanged += 1

    def _create(self, creates: list["_NewCustomer"], counts: ImportCounts) -> None:
        """Insert the batch's new customers and everything hanging off them in set-based statements."""
        actor_id = self.actor and self.actor.pk
        stamp = value_adapter(Phone._meta.get_field("created_at"))(timezone.now())
        numbers = numbers_allocate(len(creates))
        customers = []
        for new, customer_number in zip(creates, numbers, strict=True):
            prepared = new.prepared
            owner_id, team_id = (self.actor.pk, self.actor.team_id) if self.actor else (None, None)
            if prepared.owner:
                owner_id = self.users[prepared.owner]
            if prepared.team:
                team_id = self.teams[prepared.team]
            row = list(prepared.customer)
            for position, value in zip(
                SET_ON_INSERT_AT, (customer_number, owner_id, team_id, actor_id, stamp, stamp), strict=True
            ):
                row[position] = value
            customers.append(row)
        insert_rows(Customer, CUSTOMER_NAMES, customers)
        id_of = dict(column_lookup(Customer, "number", "id", numbers))
        ids = [id_of[number] for number in numbers]
        tag_ids = {t.name: t.pk for t in tags_by_name({name for new in creates for name in new.prepared.tags})}
        rows: dict[type, list] = {Phone: [], Email: [], Address: [], CustomerTag: [], ExternalId: []}
        lookalikes = []
        for customer_id, new in zip(ids, creates, strict=True):
            prepared = new.prepared
            for model, children in zip((Phone, Email, Address), prepared.children, strict=True):
                rows[model] += [(customer_id, *child, stamp) for child in children]
            rows[CustomerTag] += [(customer_id, tag_ids[name], stamp, actor_id) for name in prepared.tags]
            if prepared.external_id:
                rows[ExternalId].append((customer_id, self.system, prepared.external_id, stamp))
            others = [(cid, reason) for cid, reason in new.lookalikes if cid]
            others += [(ids[index], reason) for index, reason in new.lookalikes_in_batch]
            lookalikes += [
                DuplicateCandidate(
                    customer_id=customer_id, other_id=other, reason=reason, detected_by=f"import:{self.job.pk}"
                )
                for other, reason in others
                if other != customer_id
            ]
        for model, columns in CHILD_COLUMNS.items():
            insert_rows(model, columns, rows[model])
        DuplicateCandidate.objects.bulk_create(lookalikes, batch_size=1000, ignore_conflicts=True)
        search_documents_write((cid, new.prepared.document) for cid, new in zip(ids, creates, strict=True))
        audit_record_bulk(
            actor=self.actor,
            action="customer.import",
            target_type="customers.customer",
            target_ids=ids,
            note=f"import {self.job.pk}",
        )
        counts.created += len(ids)


@dataclass
class _NewCustomer:
    """A row that will become a new customer, with the customers it looks like: ids (0 for a row of an earlier
    batch of a dry run, which has none) and creates earlier in this batch, by position."""

    prepared: PreparedRow
    lookalikes: list[tuple[int, str]] = field(default_factory=list)
    lookalikes_in_batch: list[tuple[int, str]] = field(default_factory=list)
