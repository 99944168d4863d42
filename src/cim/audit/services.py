from collections.abc import Iterable, Mapping
from typing import Any

from cim.audit.models import AuditEvent, FieldChange
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
        target_id=str(target.pk),
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
    """One audit event per target, written in one statement (bulk tagging, demo loads)."""
    rid = request_id()
    actor = actor if actor is not None and actor.is_authenticated else None
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=str(pk),
                fields=list(fields),
                request_id=rid,
                note=note[:500],
            )
            for pk in target_ids
        ],
        batch_size=1000,
    )
