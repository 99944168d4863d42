"""The audit log's HMAC chain: each event's `chain` is HMAC-SHA256(key, previous chain ‖ the event's own columns).

Changing, deleting or moving an event breaks every link from it on, and only someone holding the key (kept outside
the database: `CIM_AUDIT_KEY`, or `audit_key` in the data directory) could forge new links. The field changes
(old/new values) are deliberately outside the chain: erasure must be able to wipe them without breaking it.
"""

import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction

# The columns a link covers, in this order (seq first: an event cannot be moved without its link failing).
CHAINED = ("seq", "at", "actor_id", "action", "target_type", "target_id", "fields", "request_id", "note")
GENESIS = ""  # the "previous chain" of the first event


def audit_key() -> bytes:
    return settings.CIM_AUDIT_KEY.encode()


def canonical(seq: int, at: datetime, actor_id, action, target_type, target_id, fields, request_id, note) -> bytes:
    """One event's chained columns as bytes that do not depend on the database: UTC time to the microsecond,
    JSON with no whitespace and no escaping of non-ASCII."""
    values = [seq, _moment(at), actor_id, action, target_type, target_id, list(fields or []), request_id, note]
    return _json(values).encode()


def _moment(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def link(key: bytes, previous: str, row: tuple) -> str:
    """The chain value of an event whose CHAINED columns are `row`, after an event whose chain is `previous`."""
    return _hmac(key, previous.encode() + b"\n" + canonical(*row))


def _hmac(key: bytes, message: bytes) -> str:
    # OpenSSL's one-shot HMAC: a fifth of the cost of an hmac.HMAC object, which bulk writes feel.
    return hmac.digest(key, message, "sha256").hex()


def chain_reserve(count: int) -> tuple[int, str]:
    """Lock the chain head for the current transaction and return (last seq, last chain); the caller appends
    `count` events after it and must call `chain_advance` in the same transaction.

    On PostgreSQL the head row is locked FOR UPDATE until commit, so two processes never link to the same
    predecessor; SQLite runs one writer at a time anyway (transactions begin IMMEDIATE)."""
    from cim.audit.models import AuditChainHead

    assert connection.in_atomic_block, "chain_reserve needs a transaction"
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # A fresh database (or a flushed test database): start where the log ends.
        from cim.audit.models import AuditEvent

        last = AuditEvent.objects.order_by("-seq").values_list("seq", "chain").first()
        # Two processes may get here at once: the second's insert waits for the first and then does nothing.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(pk=1, seq=last[0] if last else 0, chain=last[1] if last else GENESIS)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head.seq, head.chain


def chain_advance(seq: int, chain: str) -> None:
    from cim.audit.models import AuditChainHead

    AuditChainHead.objects.filter(pk=1).update(seq=seq, chain=chain)


def chain_targets(
    target_ids: Iterable[str], *, first_seq: int, previous: str, key: bytes, shared: tuple
) -> Iterable[tuple[int, str]]:
    """(seq, chain) of events numbered from `first_seq` that differ only in their target: `shared` holds their
    other CHAINED columns (at, actor_id, action, target_type, fields, request_id, note), encoded once here into
    the same bytes `canonical` gives each event."""
    at, actor_id, action, target_type, fields, request_id, note = shared
    before = _json([_moment(at), actor_id, action, target_type])[1:-1]
    after = _json([list(fields or []), request_id, note])[1:-1]
    for seq, target_id in enumerate(target_ids, start=first_seq):
        previous = _hmac(key, f"{previous}\n[{seq},{before},{_json(target_id)},{after}]".encode())
        yield seq, previous


@dataclass
class Verification:
    """What a walk of the chain found: ok, or the first broken event and why."""

    ok: bool
    checked: int
    last_seq: int
    problem: str = ""  # changed | deleted | reordered | truncated | head
    seq: int | None = None
    event_id: int | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _moved_to(key: bytes, row: tuple, window: list[tuple]) -> int | None:
    """The seq at which event `row` (CHAINED columns) would be a valid link among `window` (id, *CHAINED, chain)
    rows: the event is intact but was moved there."""
    chains = {r[1]: r[-1] for r in window}
    for other in window:
        seq = other[1]
        if seq != row[0] and (seq - 1) in chains and link(key, chains[seq - 1], (seq, *row[1:])) == other[-1]:
            return seq
    return None


def chain_verify(
    *, batch_size: int = 5000, progress: Callable[[int], None] | None = None, key: bytes | None = None
) -> Verification:
    """Walk every event in seq order, batch by batch (flat memory), recomputing each link; stop at the first
    changed, deleted or moved event, then check that the head names the last event (nothing cut off the end)."""
    from cim.audit.models import AuditChainHead, AuditEvent

    key = key or audit_key()
    columns = ("id", *CHAINED, "chain")
    previous, expected, checked = GENESIS, 1, 0
    events = AuditEvent.objects.order_by("seq").values_list(*columns)
    while True:
        batch = list(events.filter(seq__gte=expected)[:batch_size])
        for event_id, *row, stored in batch:
            seq = row[0]
            if seq != expected:
                message = f"Events {expected}–{seq - 1} are missing (deleted); the log resumes at seq {seq}."
                if seq == expected + 1:
                    message = f"Event {expected} is missing (deleted); the log resumes at seq {seq}."
                return Verification(False, checked, expected - 1, "deleted", expected, None, message)
            if link(key, previous, tuple(row)) != stored:
                window = list(events.filter(seq__gte=max(1, seq - 1000), seq__lte=seq + 1000))
                moved = _moved_to(key, tuple(row), window)
                if moved is not None:
                    message = f"Event {seq} (id {event_id}) is intact but was moved: it belongs at seq {moved}."
                    return Verification(False, checked, seq - 1, "reordered", seq, event_id, message)
                message = f"Event {seq} (id {event_id}) was changed: its content no longer matches its chain."
                return Verification(False, checked, seq - 1, "changed", seq, event_id, message)
            previous, expected, checked = stored, expected + 1, checked + 1
        if progress and batch:
            progress(len(batch))
        if len(batch) < batch_size:
            break
    last_seq = expected - 1
    head = AuditChainHead.objects.filter(pk=1).values_list("seq", "chain").first()
    if head is not None and head[0] > last_seq:
        message = f"Events {last_seq + 1}–{head[0]} are missing (deleted from the end of the log)."
        return Verification(False, checked, last_seq, "truncated", last_seq + 1, None, message)
    if head is not None and head[0] == last_seq and head[1] != previous:
        message = f"The chain head does not match event {last_seq}: the end of the log was rewritten."
        return Verification(False, checked, last_seq, "head", last_seq, None, message)
    if head is None and checked:
        message = "The chain head is missing: the end of the log cannot be checked."
        return Verification(False, checked, last_seq, "head", last_seq, None, message)
    return Verification(True, checked, last_seq, message=f"{checked:,} events verified; the chain is intact.")


def chain_existing(apps, batch_size: int = 5000) -> None:
    """Link the events written before the chain existed, in id order (for the data migration)."""
    event_model = apps.get_model("audit", "AuditEvent")
    head_model = apps.get_model("audit", "AuditChainHead")
    key, previous, seq, last_id = audit_key(), GENESIS, 0, 0
    with transaction.atomic():
        while True:
            batch = list(
                event_model.objects.filter(id__gt=last_id)
                .order_by("id")
                .values_list("id", *[c for c in CHAINED if c != "seq"])[:batch_size]
            )
            if not batch:
                break
            updates = []
            for event_id, *row in batch:
                seq += 1
                previous = link(key, previous, (seq, *row))
                updates.append(event_model(id=event_id, seq=seq, chain=previous))
            event_model.objects.bulk_update(updates, ["seq", "chain"], batch_size=1000)
            last_id = batch[-1][0]
        head_model.objects.update_or_create(pk=1, defaults={"seq": seq, "chain": previous})
