"""Required fields per customer type: what a customer must have beyond its name, checked on every entry path
(pages, API, import, forms, event ingestion) by the one validation the services run."""

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.audit.services import audit_record
from cim.quality.models import RequiredFields

CONTACTS = ("phones", "emails", "addresses")
REQUIRABLE = {
    "phones": gettext_lazy("Phone"),
    "emails": gettext_lazy("Email"),
    "addresses": gettext_lazy("Address"),
    "birthday": gettext_lazy("Birthday"),
    "gender": gettext_lazy("Gender"),
    "company": gettext_lazy("Company"),
    "uscc": gettext_lazy("Unified social credit code"),
    "industry": gettext_lazy("Industry"),
    "source_channel": gettext_lazy("Source channel"),
    "owner_id": gettext_lazy("Owner"),
}


def required_fields() -> dict[str, frozenset[str]]:
    """Customer type → its required fields; "" → those of every customer."""
    return {rule.customer_type: frozenset(rule.fields) for rule in RequiredFields.objects.all()}


def required_field_errors(*, values: dict, contacts: dict, current, rules: dict) -> dict[str, list[str]]:
    """A message per required field the customer would lack after this change."""
    customer_type = values.get("customer_type", current.customer_type if current else "") or ""
    errors = {}
    for field in sorted(rules.get("", frozenset()) | rules.get(customer_type, frozenset())):
        if field in CONTACTS:
            present = bool(contacts[field]) if field in contacts else bool(current and getattr(current, field).exists())
        else:
            present = values.get(field, getattr(current, field, None)) not in (None, "", "unknown")
        if not present:
            errors[field] = [_("Required for customers of this type.")]
    return errors


def required_fields_set(*, customer_type: str, fields: list[str], actor) -> RequiredFields:
    """Set the required fields of a customer type ("" for every customer)."""
    fields = sorted(f for f in set(fields) if f in REQUIRABLE)
    with transaction.atomic():
        rule, _created = RequiredFields.objects.update_or_create(
            customer_type=customer_type, defaults={"fields": fields}
        )
        audit_record(actor=actor, action="quality.required_fields", target=rule, fields=fields)
    return rule
