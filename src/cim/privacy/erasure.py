"""Erasure (PIPL Art. 47, GDPR Art. 17): a customer anonymised everywhere the PI registry lists, and tombstones that
replay it after a database restore so that an erased customer never comes back.

What is kept: the customer row under its number with a pseudonym ("Erased customer C000123"), orders and their
amounts, counts, scores, segment memberships and tags; the consent ledger's rows without IP or browser (proof of
what was agreed and withdrawn); the audit log's events without old and new values.
"""

import json
from collections.abc import Iterable
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.activities.follow_ups import follow_up_url
from cim.activities.models import FollowUp, Notification
from cim.audit.models import AuditEvent, FieldChange
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.core.signals import database_restored
from cim.customers.models import Customer
from cim.customers.services import _require
from cim.privacy.models import DataSubjectRequest, ErasureTombstone
from cim.privacy.registry import CUSTOMER_DATA, OnErase, personal_fields
from cim.quality.models import DuplicateCandidate, MergeRecord
from cim.search.services import search_index_remove, search_index_update

ERASED_ACTION = "customer.erase"


def tombstone_file() -> Path:
    """The tombstones are also appended to a file outside the database: a restore brings back the database as it
    was before the erasure, tombstone table included, and the file is how replay still knows."""
    return Path(getattr(settings, "CIM_TOMBSTONE_FILE", settings.DATA_DIR / "erasure-tombstones.jsonl"))


def _journal(tombstone: ErasureTombstone) -> None:
    path = tombstone_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "customer_id": tombstone.customer_id,
        "number": tombstone.number,
        "erased_at": tombstone.erased_at.isoformat(),
        "request_id": tombstone.request_id,
    }
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def _journal_read() -> list[dict]:
    path = tombstone_file()
    if not path.exists():
        return []
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash: the next erasure's line is whole
    return rows


def pseudonym_prefix() -> str:
    """ "已删除客户 " / "Erased customer ": stored text, so in the installation's language whoever erases."""
    with translation.override(settings.LANGUAGE_CODE):
        return _("Erased customer") + " "


def _blank(field: models.Field):
    """The value a personal field gets on erasure: empty, or null where the column allows it."""
    if field.null:
        return None
    if isinstance(field, models.JSONField):
        return field.get_default()
    return ""


def _blanks(label: str) -> dict:
    model = apps.get_model(label)
    values = {}
    for entry in personal_fields(label):
        field = model._meta.get_field(entry.field)
        values[field.name] = _blank(field)
    # Keys computed from a blanked value (the ID number's keyed hash) go with it: no `pre_save` runs on update().
    for field in model._meta.concrete_fields:
        if getattr(field, "source", None) in values:
            values[field.name] = _blank(field)
    if label == "customers.customer":
        values["display_name"] = Concat(Value(pseudonym_prefix()), "number")
    return values


def _with_merged(customer_ids: Iterable[int]) -> list[int]:
    """The customers and every record merged into them (the same person, kept under the survivor)."""
    ids = set(customer_ids)
    frontier = set(ids)
    while frontier:
        frontier = set(Customer.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)) - ids
        ids |= frontier
    return sorted(ids)


def _rows(entry, ids: list[int]) -> models.QuerySet:
    model = apps.get_model(entry.model)
    return model._default_manager.filter(**{f"{entry.customer_path}__in": ids}).order_by()


def _wipe_history(targets: dict[str, list[str]]) -> int:
    """Blank the old and new values the change history holds about these rows; the events themselves stay."""
    wiped = 0
    for target_type, target_ids in targets.items():
        for start in range(0, len(target_ids), 5000):
            events = AuditEvent.objects.filter(target_type=target_type, target_id__in=target_ids[start : start + 5000])
            wiped += (
                FieldChange.objects.filter(event__in=events.values("pk"))
                .exclude(old_value="", new_value="")
                .update(old_value="", new_value="")
            )
    return wiped


def fts_optimize() -> None:
    """FTS5 deletes by writing delete markers: merge the segments so the erased tokens leave the file too."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO search_document(search_document) VALUES ('optimize')")


def customers_anonymise(customer_ids: Iterable[int], *, optimize: bool = True) -> int:
    """Anonymise these customers everywhere CUSTOMER_DATA lists, set-based; idempotent. Returns how many
    customers. No audit and no tombstone: `customer_erase` and the retention rules record what they do.
    `optimize=False` leaves the full-text index's merge to the caller (batches call `fts_optimize` once)."""
    ids = _with_merged(customer_ids)
    if not ids:
        return 0
    str_ids = [str(pk) for pk in ids]
    history: dict[str, list[str]] = {"customers.customer": str_ids}
    for entry in CUSTOMER_DATA:
        if entry.on_erase == OnErase.KEEP or entry.model in {"search.searchdocument", "quality.mergerecord"}:
            continue
        rows = _rows(entry, ids)
        if entry.model != "customers.customer":
            history[entry.model] = [str(pk) for pk in rows.values_list("pk", flat=True)]
        if entry.model == "quality.duplicatecandidate":
            DuplicateCandidate.objects.filter(Q(customer_id__in=ids) | Q(other_id__in=ids)).delete()
        elif entry.model == "activities.attachment":
            for stored in rows.values_list("file", flat=True):
                field = rows.model._meta.get_field("file")
                if stored and field.storage.exists(stored):
                    field.storage.delete(stored)
            rows.delete()
        elif entry.on_erase == OnErase.DELETE:
            rows.delete()
        else:
            rows.update(**_blanks(entry.model))
    # Reminders name the customer in their text.
    follow_up_urls = [follow_up_url(f) for f in FollowUp.objects.filter(customer_id__in=ids).only("pk")]
    for start in range(0, len(follow_up_urls), 5000):
        Notification.objects.filter(url__in=follow_up_urls[start : start + 5000]).delete()
    # A merge keeps the records as they were so it can be undone: an erased person's copies go (and with them
    # the undo of that merge).
    merges = MergeRecord.objects.filter(Q(survivor_id__in=ids))
    merges.update(**_blanks("quality.mergerecord"))
    _wipe_history(history)
    search_index_remove(customer_ids=ids)
    search_index_update(customer_ids=ids)
    if optimize:
        # After the commit: the merge rewrites the whole index (seconds at 100,000 customers, see bench/RESULTS.md)
        # and must not hold the erasure's transaction open meanwhile.
        transaction.on_commit(fts_optimize)
    return len(ids)


def customer_erase(*, customer: Customer, actor, reason: str, request: DataSubjectRequest | None = None):
    """Erase a customer: anonymise everything the registry lists about them and leave a tombstone (ids only)."""
    _require(actor, Perm.PRIVACY_MANAGE)
    if not reason.strip():
        raise ValidationError({"reason": [_("Say why the customer is erased (a request, a retention rule…).")]})
    with transaction.atomic():
        customers_anonymise([customer.pk])
        tombstone, _created = ErasureTombstone.objects.update_or_create(
            customer_id=customer.pk,
            defaults={"number": customer.number, "request_id": request.pk if request else None},
        )
        transaction.on_commit(lambda: _journal(tombstone))
        audit_record(
            actor=actor,
            action=ERASED_ACTION,
            target=customer,
            fields=["personal data"],
            note=f"{request.reference if request else ''} {reason}".strip(),
        )
        event_publish("customer.erased", customer_id=customer.pk)
    customer.refresh_from_db()
    return tombstone


def tombstones_replay(*, actor=None) -> int:
    """Erase again every customer a tombstone names (after a restore from a backup older than the erasure).
    Idempotent; returns how many customers were anonymised."""
    with transaction.atomic():
        known = set(ErasureTombstone.objects.values_list("customer_id", flat=True))
        missing = {}
        for row in _journal_read():
            if row.get("customer_id") not in known:
                missing[row["customer_id"]] = ErasureTombstone(
                    customer_id=row["customer_id"],
                    number=row.get("number", ""),
                    erased_at=row.get("erased_at") or timezone.now(),
                    request_id=row.get("request_id"),
                )
        ErasureTombstone.objects.bulk_create(missing.values(), ignore_conflicts=True)
        ids = list(ErasureTombstone.objects.values_list("customer_id", flat=True))
        count = customers_anonymise(ids)
        if ids:
            ErasureTombstone.objects.update(replayed_at=timezone.now())
            audit_record(
                actor=actor,
                action="privacy.tombstones_replay",
                target=None,
                target_type="privacy.erasuretombstone",
                note=f"{len(ids)} tombstones",
            )
    return count


@receiver(database_restored, dispatch_uid="privacy.tombstones_replay")
def _replay_after_restore(sender, **kwargs):
    tombstones_replay(actor=kwargs.get("actor"))
