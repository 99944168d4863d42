from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from cim.audit.chain import audit_key, chain_advance, chain_reserve, chain_targets, link
from cim.audit.models import AuditEvent, FieldChange
from cim.core.bulk import insert_rows, value_adapter
from cim.core.context import request_id


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return ", ".join(sorted(str(v) for v in value))
    return str(value)


def _actor_id(actor) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


def audit_record(
    *,
    actor,
    action: str,
    target,
    fields: Iterable[str] = (),
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    note: str = "",
    target_type: str | None = None,
    target_id: str | None = None,
) -> AuditEvent:
    """Append an audit event to the chain, plus the old/new values of `changes` to the change history."""
    changes = changes or {}
    event = AuditEvent(
        at=timezone.now(),
        actor_id=_actor_id(actor),
        action=action,
        target_type=target_type or target._meta.label_lower,
        target_id=target_id if target_id is not None else (str(target.pk) if target is not None else ""),
        fields=sorted(set(fields) | set(changes)),
        request_id=request_id(),
        note=note[:500],
    )
    # No savepoint of its own: an audit write that fails must fail the change it records.
    with transaction.atomic(savepoint=False):
        seq, previous = chain_reserve(1)
        event.seq = seq + 1
        event.chain = link(audit_key(), previous, tuple(getattr(event, name) for name in _CHAINED_ATTRS))
        event.save(force_insert=True)
        chain_advance(event.seq, event.chain)
        if changes:
            FieldChange.objects.bulk_create(
                FieldChange(event=event, field=name, old_value=_text(old), new_value=_text(new))
                for name, (old, new) in changes.items()
            )
    return event


_CHAINED_ATTRS = ("seq", "at", "actor_id", "action", "target_type", "target_id", "fields", "request_id", "note")


def audit_record_bulk(
    *,
    actor,
    action: str,
    target_type: str,
    target_ids: Iterable[int],
    fields=(),
    note="",
    changes: Mapping[int, Mapping[str, tuple[Any, Any]]] | None = None,
) -> int:
    """One audit event per target, written set-based (imports, bulk tagging): the chain is computed for the batch
    in Python, the rows go in with one statement. `changes` (target id → {field: (old, new)}) also goes to the
    change history, in one more statement. Returns the number of events."""
    at = timezone.now()
    fields = list(fields)
    actor_id, rid, note = _actor_id(actor), request_id(), note[:500]
    adapt_at = value_adapter(AuditEvent._meta.get_field("at"))(at)
    fields_json = value_adapter(AuditEvent._meta.get_field("fields"))(fields)
    ids = [str(pk) for pk in target_ids]
    if not ids:
        return 0
    # No savepoint of its own: an audit write that fails must fail the change it records.
    with transaction.atomic(savepoint=False):
        last_seq, previous = chain_reserve(len(ids))
        links = list(
            chain_targets(
                ids,
                first_seq=last_seq + 1,
                previous=previous,
                key=audit_key(),
                shared=(at, actor_id, action, target_type, fields, rid, note),
            )
        )
        insert_rows(
            AuditEvent,
            ["seq", "chain", "at", "actor", "action", "target_type", "target_id", "fields", "request_id", "note"],
            (
                (seq, chain, adapt_at, actor_id, action, target_type, pk, fields_json, rid, note)
                for (seq, chain), pk in zip(links, ids, strict=True)
            ),
        )
        chain_advance(*links[-1])
        if changes:
            event_ids = dict(
                AuditEvent.objects.filter(seq__gt=last_seq, seq__lte=links[-1][0]).values_list("target_id", "id")
            )
            # The values are change history, encrypted like the fields they come from.
            seal_old = value_adapter(FieldChange._meta.get_field("old_value"))
            seal_new = value_adapter(FieldChange._meta.get_field("new_value"))
            insert_rows(
                FieldChange,
                ["event", "field", "old_value", "new_value"],
                (
                    (event_ids[str(pk)], name, seal_old(_text(old)), seal_new(_text(new)))
                    for pk, values in changes.items()
                    for name, (old, new) in values.items()
                ),
            )
    return len(ids)
