"""Validation of custom field values against the administrator's definitions."""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from cim.customers.choices import CustomFieldType
from cim.customers.models import CustomFieldDefinition
from cim.quality.normalize import clean_text


def _clean_value(definition: CustomFieldDefinition, value: Any) -> Any:
    kind = definition.field_type
    if kind == CustomFieldType.TEXT:
        text = clean_text(str(value))
        if len(text) > 1000:
            raise ValueError(_("Enter at most 1,000 characters."))
        return text
    if kind == CustomFieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError(_("Enter a number."))
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(_("Enter a number.")) from None
        if not number.is_finite():
            raise ValueError(_("Enter a number."))
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomFieldType.DATE:
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None
    if kind == CustomFieldType.CHOICE:
        if str(value) not in definition.choices:
            raise ValueError(_("Select one of: %(choices)s.") % {"choices": ", ".join(definition.choices)})
        return str(value)
    values = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
    values = [str(v).strip() for v in values]
    unknown = [v for v in values if v not in definition.choices]
    if unknown:
        raise ValueError(_("Select from: %(choices)s.") % {"choices": ", ".join(definition.choices)})
    return sorted(set(values), key=definition.choices.index)


def custom_field_definitions_active() -> dict[str, CustomFieldDefinition]:
    return {d.key: d for d in CustomFieldDefinition.objects.filter(is_active=True)}


def custom_fields_clean(
    values: dict[str, Any],
    *,
    existing: dict[str, Any] | None = None,
    definitions: dict[str, CustomFieldDefinition] | None = None,
):
    """(cleaned values, errors keyed `custom_fields.<key>`). Unknown keys are errors; empty values drop the key.

    Bulk callers pass `definitions` (from `custom_field_definitions_active`) instead of a query per row."""
    if definitions is None:
        definitions = custom_field_definitions_active()
    merged = dict(existing or {})
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"custom_fields.{key}"] = [_("There is no custom field “%(key)s”.") % {"key": key}]
            continue
        if value in (None, "", []):
            merged.pop(key, None)
            continue
        try:
            merged[key] = _clean_value(definition, value)
        except ValueError as error:
            errors[f"custom_fields.{key}"] = [str(error)]
    for key, definition in definitions.items():
        if definition.required and key not in merged and f"custom_fields.{key}" not in errors:
            errors[f"custom_fields.{key}"] = [_("This field is required.")]
    return merged, errors
