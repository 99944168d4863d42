"""Every write to customer master data. Each validates, normalises, indexes and audits in one transaction."""

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import Team, User
from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record, audit_record_bulk
from cim.automation.events import event_publish, events_publish
from cim.core.blind_index import blind_index
from cim.customers.choices import Kind, Status
from cim.customers.custom_fields import custom_fields_clean
from cim.customers.models import Address, Customer, CustomerTag, Email, Phone, Tag
from cim.customers.numbering import numbers_allocate
from cim.customers.schemas import CustomerInput
from cim.privacy.masking import field_policy, reveal_fields
from cim.privacy.registry import sensitive_fields
from cim.quality.matching import match_name
from cim.quality.normalize import (
    clean_paragraphs,
    clean_text,
    normalize_email,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    normalize_uscc,
    split_address,
)
from cim.quality.rules import required_field_errors, required_fields
from cim.quality.selectors import duplicates_of, record_features
from cim.quality.services import duplicates_record
from cim.search.services import search_index_update

NAME_FIELDS = ("display_name", "family_name", "given_name", "alias", "english_name")
PLAIN_FIELDS = (
    *NAME_FIELDS,
    "kind",
    "gender",
    "birthday",
    "keeps_lunar_birthday",
    "company",
    "job_title",
    "uscc",
    "id_number",
    "industry",
    "company_size",
    "customer_type",
    "source_channel",
    "value_tier",
    "region",
    "lifecycle_stage",
    "status",
    "owner_id",
    "team_id",
    "notes",
    "custom_fields",
)
DEFAULT_TAG_COLOR = "#6c757d"


class PermissionDenied(Exception):
    """The actor's role does not allow this action."""


class ReadOnlyShare(PermissionDenied):
    """The customer is shared with the actor's team for reading only: seen, not changed."""


def _require(actor, perm: str) -> None:
    if actor is not None and not has_perm(actor, perm):
        raise PermissionDenied(perm)


@cache
def _max_lengths(model) -> dict[str, int]:
    # Looked up once: bulk paths check every value of millions of rows.
    return {
        name: field.max_length
        for field in model._meta.concrete_fields
        if field.max_length
        for name in (field.name, field.attname)
    }


def _length_errors(model, row: dict, prefix: str, errors: dict[str, list[str]]) -> None:
    """Flag values that NFKC made longer than their column (㍿ becomes 株式会社): an error, not a database failure."""
    limits = _max_lengths(model)
    for name, value in row.items():
        limit = limits.get(name) if isinstance(value, str) else None
        if limit and len(value) > limit:
            errors[f"{prefix}{name}"] = [_("Enter at most %(n)s characters.") % {"n": limit}]


def _address_parts(row: dict) -> dict:
    """A Chinese address split as written into province, city, district and street, with its adcode; parts the
    caller gave are kept."""
    if row["country"] != "CN":
        return {"adcode": ""}
    parts = split_address("".join(row[f] for f in ("province", "city", "district", "street")))
    if row["province"] or row["city"] or row["district"]:
        return {"adcode": parts["adcode"]}
    return {name: parts[name] for name in ("province", "city", "district", "street", "adcode")}


def _clean_contacts(data: CustomerInput, sent: set[str], errors: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Normalised phones/emails/addresses that were sent, with duplicates dropped and one primary each."""
    cleaned: dict[str, list[dict]] = {}
    if "phones" in sent:
        phones: dict[str, dict] = {}
        for i, phone in enumerate(data.phones):
            try:
                e164 = normalize_phone(phone.number)
            except ValidationError as error:
                errors[f"phones.{i}.number"] = error.messages
                continue
            raw = clean_text(phone.number)
            if len(raw) > (limit := _max_lengths(Phone)["raw"]):
                errors[f"phones.{i}.number"] = [_("Enter at most %(n)s characters.") % {"n": limit}]
                continue
            phones.setdefault(
                e164, {**phone.model_dump(), "number": e164, "raw": raw, "match_key": blind_index("phone", e164)}
            )
        cleaned["phones"] = list(phones.values())
    if "emails" in sent:
        emails: dict[str, dict] = {}
        for i, email in enumerate(data.emails):
            try:
                address = normalize_email(email.address)
            except ValidationError as error:
                errors[f"emails.{i}.address"] = error.messages
                continue
            emails.setdefault(
                address,
                {
                    **email.model_dump(),
                    "address": address,
                    "raw": clean_text(email.address),
                    "match_key": blind_index("email", address),
                },
            )
        cleaned["emails"] = list(emails.values())
    if "addresses" in sent:
        cleaned["addresses"] = []
        for i, address in enumerate(data.addresses):
            row = {k: clean_text(v) if isinstance(v, str) else v for k, v in address.model_dump().items()}
            if any(row[f] for f in ("province", "city", "district", "street")):
                _length_errors(Address, row, f"addresses.{i}.", errors)
                cleaned["addresses"].append({**row, **_address_parts(row)})
    for rows in cleaned.values():
        primaries = [r for r in rows if r["is_primary"]]
        for row in primaries[1:]:
            row["is_primary"] = False
        if rows and not primaries:
            rows[0]["is_primary"] = True
    return cleaned


def _clean_fields(
    data: CustomerInput, sent: set[str], current: Customer | None, definitions: dict | None = None
) -> tuple[dict, dict, dict]:
    """(model field values, contact points, errors) for the fields that were sent."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name in PLAIN_FIELDS:
        if name not in sent or name == "custom_fields":
            continue
        value = getattr(data, name)
        if name in NAME_FIELDS:
            value = normalize_name(value)
        elif name == "notes":
            value = clean_paragraphs(value)
        elif isinstance(value, str):
            value = clean_text(value)
        elif value is None and name not in ("birthday", "owner_id", "team_id"):
            value = ""
        values[name] = value
    _length_errors(Customer, values, "", errors)
    kind = values.get("kind", current.kind if current else Kind.PERSON)
    if not values.get("display_name", current.display_name if current else ""):
        # Chinese order: family name first (张 + 三).
        composed = "".join(values.get(f, getattr(current, f, "")) for f in ("family_name", "given_name"))
        if composed:
            values["display_name"] = composed
        else:
            errors["display_name"] = [_("Enter the customer's name.")]
    if values.get("uscc"):
        try:
            values["uscc"] = normalize_uscc(values["uscc"])
        except ValidationError as error:
            errors["uscc"] = error.messages
    if values.get("id_number"):
        try:
            values["id_number"] = normalize_id_number(values["id_number"])
        except ValidationError as error:
            errors["id_number"] = error.messages
    if kind == Kind.PERSON and values.get("uscc"):
        errors["uscc"] = [_("Only organizations have a unified social credit code.")]
    if values.get("owner_id") is not None and not User.objects.filter(pk=values["owner_id"], is_active=True).exists():
        errors["owner_id"] = [_("There is no active user with this id.")]
    if values.get("team_id") is not None and not Team.objects.filter(pk=values["team_id"]).exists():
        errors["team_id"] = [_("There is no team with this id.")]
    if "status" in values and values["status"] == Status.ARCHIVED and (current is None or not current.is_archived):
        errors["status"] = [_("Archive a customer with the archive action.")]
    # Leaving the archive is a restore: it needs the archive right and its own audit action.
    if current is not None and current.is_archived and values.get("status", Status.ARCHIVED) != Status.ARCHIVED:
        errors["status"] = [_("Restore a customer with the restore action.")]
    if "custom_fields" in sent or current is None:
        merged, cf_errors = custom_fields_clean(
            data.custom_fields, existing=current.custom_fields if current else {}, definitions=definitions
        )
        values["custom_fields"] = merged
        errors.update(cf_errors)
    contacts = _clean_contacts(data, sent, errors)
    if "tags" in sent:
        names = [clean_text(t) for t in data.tags]
        for i, name in enumerate(names):
            if not name or len(name) > 50:
                errors[f"tags.{i}"] = [_("A tag has 1 to 50 characters.")]
    return values, contacts, errors


CREATE_DEFAULTS = {"kind", "lifecycle_stage", "status", "gender"}


def customer_input_clean(
    data: CustomerInput,
    *,
    current: Customer | None = None,
    definitions: dict | None = None,
    required: dict | None = None,
) -> tuple[dict, dict, dict]:
    """Validate and normalise `data` as `customer_create` (no `current`) or `customer_update` would, without
    writing: (model field values, contact points, errors). Bulk paths validate rows with it, passing the custom
    field `definitions` and `required` fields they read once (and so no query per row)."""
    sent = set(data.model_fields_set) | (CREATE_DEFAULTS if current is None else set())
    values, contacts, errors = _clean_fields(data, sent, current, definitions)
    rules = required_fields() if required is None else required
    for field, messages in required_field_errors(
        values=values, contacts=contacts, current=current, rules=rules
    ).items():
        errors.setdefault(field, messages)
    return values, contacts, errors


def _replace_contacts(customer: Customer, contacts: dict[str, list[dict]]) -> dict[str, tuple[list, list]]:
    """Make the stored contact points equal to `contacts`; return the changed kinds as (old, new) lists."""
    changes = {}
    for field, model, key in (("phones", Phone, "number"), ("emails", Email, "address")):
        if field not in contacts:
            continue
        existing = {getattr(row, key): row for row in model.objects.filter(customer=customer)}
        wanted = {row[key]: row for row in contacts[field]}
        old_view = sorted((k, r.kind, r.is_primary, r.is_verified) for k, r in existing.items())
        new_view = sorted((k, r["kind"], r["is_primary"], r["is_verified"]) for k, r in wanted.items())
        if old_view == new_view:
            continue
        model.objects.filter(customer=customer).delete()
        model.objects.bulk_create(model(customer=customer, **row) for row in wanted.values())
        changes[field] = (sorted(existing), sorted(wanted))
    if "addresses" in contacts:
        old = [str(a) for a in customer.addresses.all()]
        new = [
            " ".join(p for p in (a["province"], a["city"], a["district"], a["street"]) if p)
            for a in contacts["addresses"]
        ]
        old_rows = [(a.kind, str(a), a.postal_code, a.is_primary, a.is_verified) for a in customer.addresses.all()]
        new_rows = [
            (a["kind"], n, a["postal_code"], a["is_primary"], a["is_verified"])
            for a, n in zip(contacts["addresses"], new, strict=True)
        ]
        if old_rows != new_rows:
            customer.addresses.all().delete()
            Address.objects.bulk_create(Address(customer=customer, **row) for row in contacts["addresses"])
            changes["addresses"] = (old, new)
    return changes


def tags_by_name(names: Iterable[str]) -> list[Tag]:
    """The tags of these names, made (grey) where missing."""
    names = list(dict.fromkeys(clean_text(n) for n in names if clean_text(n)))
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n, color=DEFAULT_TAG_COLOR) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    return [existing[n] for n in names]


def _set_tags(customer: Customer, names: list[str], actor) -> tuple[list[str], list[str]] | None:
    wanted = {t.name: t for t in tags_by_name(names)}
    current = {ct.tag.name: ct for ct in CustomerTag.objects.filter(customer=customer).select_related("tag")}
    if set(wanted) == set(current):
        return None
    CustomerTag.objects.filter(customer=customer, tag__name__in=set(current) - set(wanted)).delete()
    CustomerTag.objects.bulk_create(
        CustomerTag(customer=customer, tag=wanted[n], added_by=_user(actor)) for n in set(wanted) - set(current)
    )
    return sorted(current), sorted(wanted)


def _user(actor):
    return actor if actor is not None and actor.is_authenticated else None


class DuplicatesFound(Exception):
    """A strict create found likely duplicates, and wrote nothing."""

    def __init__(self, duplicates: list):
        super().__init__(f"{len(duplicates)} likely duplicates")
        self.duplicates = duplicates


def customer_duplicates_preview(*, data: CustomerInput) -> list:
    """The customers the matching model finds likely to be the one `data` would create (nothing is written).
    Invalid input has none: its errors come first."""
    values, contacts, errors = customer_input_clean(data)
    return [] if errors else duplicates_of(record=record_features(values=values, contacts=contacts))


def customer_create(*, data: CustomerInput, actor, strict: bool = False, channel: str = "create") -> Customer:
    """Create a customer under a new number. Raises ValidationError with per-field messages. Likely duplicates
    are recorded for review, as found by `channel` (the entry path), and kept on the result
    (`possible_duplicates`); with `strict`, they stop the create (DuplicatesFound) instead."""
    _require(actor, Perm.CUSTOMER_CHANGE)
    values, contacts, errors = customer_input_clean(data)
    if errors:
        raise ValidationError(errors)
    duplicates = duplicates_of(record=record_features(values=values, contacts=contacts))
    if duplicates and strict:
        raise DuplicatesFound(duplicates)
    if values.get("owner_id") is None and actor is not None and actor.is_authenticated:
        values["owner_id"] = actor.pk
        values.setdefault("team_id", actor.team_id)
    with transaction.atomic():
        customer = Customer.objects.create(
            number=numbers_allocate(1)[0],
            created_by=_user(actor),
            match_name=match_name(values["display_name"]),
            **values,
        )
        _replace_contacts(customer, contacts)
        if data.tags:
            _set_tags(customer, data.tags, actor)
        search_index_update(customer_ids=[customer.pk])
        duplicates_record(customer=customer, duplicates=duplicates, detected_by=channel)
        audit_record(
            actor=actor,
            action="customer.create",
            target=customer,
            # The fields given a value, not every field of the form.
            fields=[
                *(name for name, value in values.items() if value not in ("", None, {})),
                *(name for name, rows in contacts.items() if rows),
                *(["tags"] if data.tags else []),
            ],
        )
        event_publish("customer.created", customer_id=customer.pk, data={"channel": channel})
        for name in sorted(set(data.tags or ())):
            event_publish("customer.tag_added", customer_id=customer.pk, data={"tag": name})
    customer.possible_duplicates = duplicates
    return customer


# The contact lists of CustomerInput and the PI registry's model behind each.
CONTACT_MODELS = {"phones": "customers.phone", "emails": "customers.email", "addresses": "customers.address"}


def locked_fields(*, user, owner_id: int | None) -> set[str]:
    """The CustomerInput fields holding sensitive data that `user` may not change on a customer of `owner_id`:
    customer fields by name, contact lists by list name (`phones`), from the PI registry and roles.FIELD_ACCESS."""
    policy = field_policy(user)
    locked = {f.field for f in sensitive_fields("customers.customer") if not policy.may_edit(f.mask, owner_id)}
    for name, model in CONTACT_MODELS.items():
        if any(not policy.may_edit(f.mask, owner_id) for f in sensitive_fields(model)):
            locked.add(name)
    return locked


def _check_field_access(actor, owner_id: int | None, changes: dict) -> None:
    if actor is None:  # the system itself (form submissions, event ingestion)
        return
    denied = locked_fields(user=actor, owner_id=owner_id) & set(changes)
    if denied:
        message = _("Your role may not change this field; it is shown masked to you.")
        raise ValidationError({name: [message] for name in sorted(denied)})


def customer_update(*, customer: Customer, data: CustomerInput, actor, note: str = "") -> Customer:
    """Change the fields that were sent; record each changed field's old and new value (and `note`: what made the
    change when it was not a person, e.g. the automation rule)."""
    _require(actor, Perm.CUSTOMER_CHANGE)
    from cim.privacy.services import restriction_check  # privacy imports this module

    restriction_check(customer.pk)
    sent = set(data.model_fields_set)
    values, contacts, errors = customer_input_clean(data, current=customer)
    if errors:
        raise ValidationError(errors)
    owner_id = customer.owner_id
    with transaction.atomic():
        changes = {
            name: (getattr(customer, name), value) for name, value in values.items() if getattr(customer, name) != value
        }
        _check_field_access(actor, owner_id, changes)
        for name, (_old, new) in changes.items():
            setattr(customer, name, new)
        contact_changes = _replace_contacts(customer, contacts)
        _check_field_access(actor, owner_id, contact_changes)  # raising rolls the replacement back
        changes.update(contact_changes)
        if "tags" in sent and (tag_change := _set_tags(customer, data.tags, actor)):
            changes["tags"] = tag_change
        if not changes:
            return customer
        customer.match_name = match_name(customer.display_name)
        customer.save()
        search_index_update(customer_ids=[customer.pk])
        audit_record(actor=actor, action="customer.update", target=customer, changes=changes, note=note)
        customer_changes_publish(customer_id=customer.pk, changes=changes)
    return customer


def customer_changes_publish(*, customer_id: int, changes: dict[str, tuple]) -> None:
    """The events of one customer's change: which fields moved, and the moves rules react to by name."""
    event_publish("customer.updated", customer_id=customer_id, data={"fields": sorted(changes)})
    if "lifecycle_stage" in changes:
        old, new = changes["lifecycle_stage"]
        event_publish("customer.stage_changed", customer_id=customer_id, data={"from": old, "to": new})
    if "owner_id" in changes:
        old, new = changes["owner_id"]
        event_publish("customer.owner_changed", customer_id=customer_id, data={"from": old, "to": new})
    if "tags" in changes:
        old, new = (set(names) for names in changes["tags"])
        for name in sorted(new - old):
            event_publish("customer.tag_added", customer_id=customer_id, data={"tag": name})
        for name in sorted(old - new):
            event_publish("customer.tag_removed", customer_id=customer_id, data={"tag": name})


def customer_archive(*, customer: Customer, actor, reason: str = "") -> Customer:
    """Archive instead of delete: gone from lists and search, history and number kept."""
    _require(actor, Perm.CUSTOMER_ARCHIVE)
    if customer.is_archived:
        return customer
    with transaction.atomic():
        old = customer.status
        customer.status = Status.ARCHIVED
        customer.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="customer.archive",
            target=customer,
            changes={"status": (old, Status.ARCHIVED)},
            note=reason,
        )
    return customer


def customer_restore(*, customer: Customer, actor) -> Customer:
    _require(actor, Perm.CUSTOMER_ARCHIVE)
    if not customer.is_archived:
        return customer
    with transaction.atomic():
        customer.status = Status.ACTIVE
        customer.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="customer.restore",
            target=customer,
            changes={"status": (Status.ARCHIVED, Status.ACTIVE)},
        )
    return customer


def customer_review(*, customer: Customer, actor) -> Customer:
    """Record that a person checked the customer's data (定期核对): it leaves the review queue for a while."""
    _require(actor, Perm.CUSTOMER_CHANGE)
    with transaction.atomic():
        customer.reviewed_at = timezone.now()
        Customer.objects.filter(pk=customer.pk).update(reviewed_at=customer.reviewed_at)
        audit_record(actor=actor, action="customer.review", target=customer, fields=["reviewed_at"])
    return customer


def customers_tag(
    *, customer_ids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = (), actor, note: str = ""
) -> int:
    """Add and remove tags on many customers in set-based statements; returns how many customers changed. `note`
    says what made the change when it was not a person (an automation rule)."""
    _require(actor, Perm.CUSTOMER_TAG)
    add = list(add)
    errors = {f"add.{i}": [_("A tag has 1 to 50 characters.")] for i, n in enumerate(add) if len(clean_text(n)) > 50}
    if errors:
        raise ValidationError(errors)
    from cim.privacy.selectors import restricted_ids  # privacy imports this module

    # Customers restricted to storage at their request are left as they are: tagging is a use of their data.
    ids = list(dict.fromkeys(customer_ids))
    restricted = restricted_ids(ids)
    ids = [pk for pk in ids if pk not in restricted]
    add_tags = tags_by_name(add)
    remove_names = {clean_text(n) for n in remove} - {t.name for t in add_tags}
    changed: set[int] = set()
    with transaction.atomic():
        for tag in add_tags:
            have = set(CustomerTag.objects.filter(tag=tag, customer_id__in=ids).values_list("customer_id", flat=True))
            new = [cid for cid in ids if cid not in have]
            CustomerTag.objects.bulk_create(
                [CustomerTag(customer_id=cid, tag=tag, added_by=_user(actor)) for cid in new], batch_size=1000
            )
            changed.update(new)
            events_publish("customer.tag_added", customer_ids=new, data={"tag": tag.name})
        if remove_names:
            doomed = CustomerTag.objects.filter(tag__name__in=remove_names, customer_id__in=ids)
            for name, customer_ids in _ids_by_tag(doomed).items():
                changed.update(customer_ids)
                events_publish("customer.tag_removed", customer_ids=customer_ids, data={"tag": name})
            doomed.delete()
        # Language-neutral: the note is read later by people in either language.
        note = " ".join([*(f"+{t.name}" for t in add_tags), *(f"-{n}" for n in sorted(remove_names)), note]).strip()
        audit_record_bulk(
            actor=actor,
            action="customer.tag",
            target_type="customers.customer",
            target_ids=sorted(changed),
            fields=["tags"],
            note=note,
        )
        Customer.objects.filter(pk__in=changed).update(updated_at=timezone.now())
    return len(changed)


def _ids_by_tag(customer_tags) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for name, customer_id in customer_tags.order_by("tag__name", "customer_id").values_list("tag__name", "customer_id"):
        ids.setdefault(name, []).append(customer_id)
    return ids


def customer_reveal(*, customer: Customer, fields: Iterable[str], actor) -> dict[str, list]:
    """The unmasked values of sensitive `fields` (keys like `phone.number`, `customer.birthday`) of a customer the
    actor sees, for a role with Perm.CUSTOMER_REVEAL. Audited with the field keys, never the values."""
    _require(actor, Perm.CUSTOMER_REVEAL)
    known = reveal_fields()
    keys = list(dict.fromkeys(fields))
    if not keys:
        raise ValidationError({"fields": [_("Name at least one field to reveal.")]})
    unknown = [key for key in keys if key not in known]
    if unknown:
        message = _("Not a sensitive field: %(fields)s. Choose from: %(choices)s.")
        raise ValidationError(
            {"fields": [message % {"fields": ", ".join(unknown)[:200], "choices": ", ".join(sorted(known))}]}
        )
    values: dict[str, list] = {}
    for key in keys:
        entry = known[key]
        if entry.model == "customers.customer":
            value = Customer.objects.filter(pk=customer.pk).values_list(entry.field, flat=True).first()
            values[key] = [] if value in (None, "") else [value]
        else:
            rows = apps.get_model(entry.model).objects.filter(customer_id=customer.pk).order_by("-is_primary", "id")
            values[key] = [v for v in rows.values_list(entry.field, flat=True) if v not in (None, "")]
    with transaction.atomic():
        audit_record(actor=actor, action="customer.reveal", target=customer, fields=keys)
    return values
