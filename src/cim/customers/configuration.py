"""Writes to what administrators configure: tags, custom field definitions and the numbering scheme."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.audit.services import audit_record
from cim.customers.models import CustomFieldDefinition, NumberingScheme, Tag
from cim.customers.numbering import scheme_get
from cim.customers.services import _require
from cim.quality.normalize import clean_text


def _apply(instance, values: dict) -> dict:
    changes = {k: (getattr(instance, k), v) for k, v in values.items() if getattr(instance, k) != v}
    for name, (_old, new) in changes.items():
        setattr(instance, name, new)
    return changes


def _save(instance, *, actor, action: str, changes: dict):
    try:
        instance.full_clean()
    except ValidationError as error:
        raise ValidationError(error.message_dict) from None
    with transaction.atomic():
        # Only the changed columns: a full save could write back a stale `next_sequence`.
        instance.save(update_fields=list(changes) if instance.pk and changes else None)
        audit_record(actor=actor, action=action, target=instance, changes=changes)
    return instance


def tag_create(*, name: str, color: str = "#6c757d", description: str = "", actor) -> Tag:
    _require(actor, Perm.SETTINGS_MANAGE)
    tag = Tag(name=clean_text(name), color=color, description=clean_text(description))
    if Tag.objects.filter(name=tag.name).exists():
        raise ValidationError({"name": [_("A tag with this name exists.")]})
    return _save(tag, actor=actor, action="tag.create", changes={})


def tag_update(*, tag: Tag, actor, **values) -> Tag:
    _require(actor, Perm.SETTINGS_MANAGE)
    values = {k: clean_text(v) for k, v in values.items() if v is not None}
    if "name" in values and Tag.objects.exclude(pk=tag.pk).filter(name=values["name"]).exists():
        raise ValidationError({"name": [_("A tag with this name exists.")]})
    changes = _apply(tag, values)
    if not changes:
        return tag
    return _save(tag, actor=actor, action="tag.update", changes=changes)


def _clean_choices(field_type: str, choices: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(clean_text(c) for c in choices if clean_text(c)))
    if field_type in ("choice", "multi_choice") and not cleaned:
        raise ValidationError({"choices": [_("A choice field needs at least one choice.")]})
    return cleaned if field_type in ("choice", "multi_choice") else []


def custom_field_create(
    *,
    key: str,
    label_zh: str,
    label_en: str,
    field_type: str,
    choices: list[str] = (),
    required: bool = False,
    position: int = 0,
    actor,
) -> CustomFieldDefinition:
    _require(actor, Perm.SETTINGS_MANAGE)
    if CustomFieldDefinition.objects.filter(key=key).exists():
        raise ValidationError({"key": [_("A custom field with this key exists.")]})
    definition = CustomFieldDefinition(
        key=key,
        label_zh=clean_text(label_zh),
        label_en=clean_text(label_en),
        field_type=field_type,
        choices=_clean_choices(field_type, list(choices)),
        required=required,
        position=position,
    )
    return _save(definition, actor=actor, action="custom_field.create", changes={})


def custom_field_update(*, definition: CustomFieldDefinition, actor, **values) -> CustomFieldDefinition:
    """Change labels, choices, required, order or active; the key and type stay, so stored values keep meaning."""
    _require(actor, Perm.SETTINGS_MANAGE)
    values = {k: clean_text(v) if isinstance(v, str) else v for k, v in values.items() if v is not None}
    if "choices" in values:
        values["choices"] = _clean_choices(definition.field_type, values["choices"])
    changes = _apply(definition, values)
    if not changes:
        return definition
    return _save(definition, actor=actor, action="custom_field.update", changes=changes)


def numbering_scheme_update(
    *, actor, prefix: str, date_part: str, sequence_width: int, check_digit: bool
) -> NumberingScheme:
    """Change how new numbers look. Issued numbers keep theirs; the sequence is never reset, so none repeats."""
    _require(actor, Perm.SETTINGS_MANAGE)
    scheme = scheme_get()
    prefix = clean_text(prefix).upper()
    if not prefix.isascii() or not (prefix.isalpha() or prefix == "") or len(prefix) > 6:
        raise ValidationError({"prefix": [_("Use up to 6 letters A–Z.")]})
    if not 3 <= sequence_width <= 12:
        raise ValidationError({"sequence_width": [_("Use 3 to 12 digits.")]})
    changes = _apply(
        scheme, {"prefix": prefix, "date_part": date_part, "sequence_width": sequence_width, "check_digit": check_digit}
    )
    if not changes:
        return scheme
    return _save(scheme, actor=actor, action="numbering_scheme.update", changes=changes)
