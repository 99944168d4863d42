from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone

from cim.audit.models import AuditEvent, FieldChange
from cim.core.bulk import insert_rows, value_adapter
from cim.core.context import request_id


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return ", ".join(sorted(str(v) for v in value))
    return str(value)


def audit_record(
    *,
    actor,
    action: str,
    target,
    fields: Iterable[str] = (),
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    note: str = "",
    target_type: str | None = None,
) -> AuditEvent:
    """Append an audit event, plus the old/new values of `changes` to the change history."""
    changes = changes or {}
    event = AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target_type or target._meta.label_lower,
        target_id=str(target.pk) if target is not None else "",
        fields=sorted(set(fields) | set(changes)),
        request_id=request_id(),
        note=note[:500],
    )
    if changes:
        FieldChange.objects.bulk_create(
            FieldChange(event=event, field=name, old_value=_text(old), new_value=_text(new))
            for name, (old, new) in changes.items()
        )
    return event


def audit_record_bulk(*, actor, action: str, target_type: str, target_ids: Iterable[int], fields=(), note=""):
    """One audit event per target, written set-based (imports, bulk tagging): plain rows, not model instances."""
    at = value_adapter(AuditEvent._meta.get_field("at"))(timezone.now())
    fields_json = value_adapter(AuditEvent._meta.get_field("fields"))(list(fields))
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    rid, note = request_id(), note[:500]
    insert_rows(
        AuditEvent,
        ["at", "actor", "action", "target_type", "target_id", "fields", "request_id", "note"],
        ((at, actor_id, action, target_type, str(pk), fields_json, rid, note) for pk in target_ids),
    )
