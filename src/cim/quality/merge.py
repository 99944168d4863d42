"""Merging customers (合并) and undoing it: any number at once, every kept value traced to the record it came
from, every related row moved to the survivor, and a record of it all complete enough that unmerge gives back
the records and their relations exactly as they were.

Survivorship, field by field: a value chosen by a person wins; otherwise the survivor's own value if it has one;
otherwise the most recently updated merged record's. Contact points, tags and everything else that hangs off a
customer (events, consents, form submissions, external ids) move to the survivor; a phone, an email or a tag the
survivor already has is kept only in the merge record. The merged records are archived, pointing to the survivor.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.analytics.models import CustomerScore
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.customers.choices import Status
from cim.customers.models import Customer, derived_updates
from cim.customers.services import PLAIN_FIELDS, PermissionDenied
from cim.quality.matching import match_name
from cim.quality.models import DuplicateCandidate, MergeRecord
from cim.search.models import SearchDocument
from cim.search.services import search_index_update

# Relations that are not moved row by row: search documents are rebuilt, pairs among merged records are marked
# merged instead, and analytics scores are computed again for the survivor (from the orders it now holds) at the
# next refresh.
NOT_MOVED = (SearchDocument, DuplicateCandidate, CustomerScore)
MERGEABLE_FIELDS = [name for name in PLAIN_FIELDS if name not in ("status",)]


@dataclass
class MergePlan:
    """What a merge makes: the survivor's values, and which record each came from (customer number)."""

    survivor: Customer
    merged: list[Customer]
    values: dict[str, object]
    provenance: dict[str, str] = field(default_factory=dict)


def _relations():
    """(model, field name) of every row that points at a customer, the customer's own pointers excepted."""
    for relation in Customer._meta.get_fields(include_hidden=True):
        reverse = relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one)
        if reverse and relation.related_model not in (*NOT_MOVED, Customer):
            yield relation.related_model, relation.field.name


def _unique_with_customer(model, field_name: str) -> list[tuple[str, ...]]:
    """The other fields each unconditional unique constraint holds beside the customer: (number,) for phones."""
    return [
        tuple(f for f in constraint.fields if f != field_name)
        for constraint in model._meta.constraints
        if getattr(constraint, "fields", None) and field_name in constraint.fields and constraint.condition is None
    ]


def _empty(value) -> bool:
    return value in (None, "", {}, [])


def merge_plan(*, survivor: Customer, merged: list[Customer], choices: dict[str, int] | None = None) -> MergePlan:
    """The survivor's values after the merge, without writing. `choices` maps a field to the id of the record
    whose value it keeps."""
    records = {c.pk: c for c in [survivor, *merged]}
    by_recency = sorted(merged, key=lambda c: c.updated_at, reverse=True)
    plan = MergePlan(survivor=survivor, merged=merged, values={})
    for name in MERGEABLE_FIELDS:
        chosen = (choices or {}).get(name)
        if chosen is not None and chosen in records:
            source = records[chosen]
        elif not _empty(getattr(survivor, name)):
            source = survivor
        else:
            source = next((c for c in by_recency if not _empty(getattr(c, name))), survivor)
        value = getattr(source, name)
        if name == "custom_fields":
            # Keys the survivor lacks come from the others, the most recent first.
            value = {k: v for c in reversed([survivor, *by_recency]) for k, v in (c.custom_fields or {}).items()}
            value.update(getattr(source, name) or {})
        plan.values[name] = value
        plan.provenance[name] = source.number
    return plan


def _check(survivor: Customer, merged: list[Customer], actor) -> None:
    if actor is not None and not has_perm(actor, Perm.CUSTOMER_MERGE):
        raise PermissionDenied(Perm.CUSTOMER_MERGE)
    if not merged:
        raise ValidationError({"duplicates": [_("Name at least one customer to merge into the survivor.")]})
    ids = [survivor.pk, *(c.pk for c in merged)]
    if len(set(ids)) != len(ids):
        raise ValidationError({"duplicates": [_("Each customer can be named once, and not as the survivor.")]})
    if any(c.merged_into_id or c.status == Status.ARCHIVED for c in [survivor, *merged]):
        raise ValidationError({"duplicates": [_("Archived or already merged customers cannot be merged.")]})


def _row_values(row: dict) -> dict:
    """A row as JSON can hold it: dates and times as ISO text, amounts as exact decimal text (restored by the
    model fields on unmerge)."""
    return {
        k: v.isoformat() if isinstance(v, date | datetime) else str(v) if isinstance(v, Decimal) else v
        for k, v in row.items()
    }


def _snapshot(customers: list[Customer]) -> list[dict]:
    return [_row_values(row) for row in Customer.objects.filter(pk__in=[c.pk for c in customers]).values()]


def customer_merge(
    *, survivor: Customer, duplicates: list[Customer], actor, choices: dict[str, int] | None = None
) -> MergeRecord:
    """Merge `duplicates` into `survivor` (see the module's rules). Raises ValidationError when they cannot be."""
    _check(survivor, duplicates, actor)
    plan = merge_plan(survivor=survivor, merged=duplicates, choices=choices)
    merged_ids = [c.pk for c in duplicates]
    with transaction.atomic():
        record = MergeRecord(
            survivor=survivor,
            merged_ids=merged_ids,
            customers_before=_snapshot([survivor, *duplicates]),
            provenance=plan.provenance,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        record.moved, record.removed = _move_relations(survivor, merged_ids)
        pairs = DuplicateCandidate.objects.filter(
            customer__in=[survivor.pk, *merged_ids], other__in=[survivor.pk, *merged_ids]
        )
        record.pairs_before = dict(pairs.values_list("pk", "status"))
        pairs.update(status=DuplicateCandidate.Status.MERGED, decided_at=timezone.now())
        changed = {name: value for name, value in plan.values.items() if getattr(survivor, name) != value}
        now = timezone.now()
        Customer.objects.filter(pk=survivor.pk).update(
            **changed, **derived_updates(changed), match_name=match_name(plan.values["display_name"]), updated_at=now
        )
        Customer.objects.filter(pk__in=merged_ids).update(status=Status.ARCHIVED, merged_into=survivor, updated_at=now)
        record.save()
        search_index_update(customer_ids=[survivor.pk, *merged_ids])
        audit_record(
            actor=actor,
            action="customer.merge",
            target=survivor,
            changes={name: (getattr(survivor, name), value) for name, value in changed.items()},
            note=f"merge {record.pk}: " + ", ".join(c.number for c in duplicates),
        )
        for customer in duplicates:
            audit_record(
                actor=actor,
                action="customer.merged_into",
                target=customer,
                fields=["status", "merged_into"],
                note=f"merge {record.pk}: into {survivor.number}",
            )
        event_publish("customer.merged", customer_id=survivor.pk, data={"merged": merged_ids, "merge": record.pk})
    survivor.refresh_from_db()
    return record


def _move_relations(survivor: Customer, merged_ids: list[int]) -> tuple[dict, dict]:
    """Point every row of the merged customers at the survivor; a row whose unique values the survivor already
    holds is removed instead. Returns what unmerge needs: the moved rows as they were, and the removed rows."""
    moved: dict[str, list[dict]] = {}
    removed: dict[str, list[dict]] = {}
    for model, name in _relations():
        label = model._meta.label
        rows = list(model.objects.filter(**{f"{name}__in": merged_ids}).values())
        if not rows:
            continue
        attname = model._meta.get_field(name).attname
        held = {
            key: set(model.objects.filter(**{name: survivor}).values_list(*key))
            for key in _unique_with_customer(model, name)
        }
        keep, drop = [], []
        for row in rows:
            values = [tuple(row[model._meta.get_field(f).attname] for f in key) for key in held]
            if any(value in held[key] for key, value in zip(held, values, strict=True)):
                drop.append(row)
            else:
                keep.append(row)
                for key, value in zip(held, values, strict=True):
                    held[key].add(value)
        if keep:
            update = {attname: survivor.pk}
            if any(f.name == "is_primary" for f in model._meta.fields):
                update["is_primary"] = False  # the survivor keeps its own primary contact
            model.objects.filter(pk__in=[r["id"] for r in keep]).update(**update)
            moved[label] = [_row_values(r) for r in keep]
        if drop:
            model.objects.filter(pk__in=[r["id"] for r in drop]).delete()
            removed[label] = [_row_values(r) for r in drop]
    return moved, removed


def customer_unmerge(*, record: MergeRecord, actor) -> MergeRecord:
    """Give back the records and relations a merge changed, exactly as they were before it."""
    from django.apps import apps

    if actor is not None and not has_perm(actor, Perm.CUSTOMER_MERGE):
        raise PermissionDenied(Perm.CUSTOMER_MERGE)
    if record.undone_at is not None:
        raise ValidationError({"merge": [_("This merge has already been undone.")]})
    with transaction.atomic():
        for row in record.customers_before:
            Customer.objects.filter(pk=row["id"]).update(**_restored(Customer, row))
        for label, rows in record.moved.items():
            model = apps.get_model(label)
            for row in rows:
                model.objects.filter(pk=row["id"]).update(**_restored(model, row))
        for label, rows in record.removed.items():
            model = apps.get_model(label)
            model.objects.bulk_create([model(**_restored(model, row, with_id=True)) for row in rows])
            for row in rows:  # creating stamps auto_now_add fields anew; their values as they were
                model.objects.filter(pk=row["id"]).update(**_restored(model, row))
        for pk, status in record.pairs_before.items():
            DuplicateCandidate.objects.filter(pk=pk).update(status=status, decided_at=None)
        record.undone_at = timezone.now()
        record.undone_by = actor if actor is not None and actor.is_authenticated else None
        record.save(update_fields=["undone_at", "undone_by"])
        ids = [record.survivor_id, *record.merged_ids]
        search_index_update(customer_ids=ids)
        audit_record(actor=actor, action="customer.unmerge", target=record.survivor, note=f"merge {record.pk}")
        event_publish("customer.unmerged", customer_id=record.survivor_id, data={"restored": record.merged_ids})
    return record


def _restored(model: type[Model], row: dict, *, with_id: bool = False) -> dict:
    """A snapshot row's values as the model stores them (ISO text back to dates and times)."""
    values = {}
    for name, value in row.items():
        if name == "id" and not with_id:
            continue
        field = model._meta.get_field(name) if name != "id" else model._meta.pk
        values[field.attname] = (
            field.to_python(value)
            if isinstance(value, str) and field.get_internal_type() in ("DateField", "DateTimeField", "DecimalField")
            else value
        )
    return values
