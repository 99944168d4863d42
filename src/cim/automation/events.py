"""The event catalogue and the outbox: what happened to customers, for automation rules and webhooks.

A service that changes something calls `event_publish` inside its own transaction, so an event exists exactly
when its change was committed (a rolled-back change leaves none). After commit, a background job hands the new
events to every registered consumer (rules, webhooks) in one transaction with marking them dispatched: each
event reaches each consumer once, and a consumer only records the work it must do (a rule run, a delivery),
which other jobs then carry out. Payloads name ids, field names and amounts, never personal values.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from cim.automation.models import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventType:
    name: str
    description: Promise
    # The keys of `data`, each with what it holds: the payload's documented, versioned shape.
    data: dict[str, Promise] = field(default_factory=dict)
    version: int = 1


_CUSTOMER_FIELDS = {"fields": _("names of the fields that changed")}
_MESSAGE_FIELDS = {
    "message": _("the message's id"),
    "channel": _("email, sms or wechat"),
    "campaign": _("the campaign's id, when a campaign sent it"),
}

CATALOGUE: dict[str, EventType] = {
    event.name: event
    for event in [
        EventType("customer.created", _("A customer was created."), {"channel": _("the entry path")}),
        EventType("customer.updated", _("Fields of a customer changed."), _CUSTOMER_FIELDS),
        EventType(
            "customer.stage_changed",
            _("A customer's lifecycle stage changed."),
            {"from": _("the previous stage"), "to": _("the new stage")},
        ),
        EventType(
            "customer.owner_changed",
            _("A customer was given another owner."),
            {"from": _("the previous owner's id"), "to": _("the new owner's id")},
        ),
        EventType("customer.tag_added", _("A tag was put on a customer."), {"tag": _("the tag's name")}),
        EventType("customer.tag_removed", _("A tag was taken off a customer."), {"tag": _("the tag's name")}),
        EventType(
            "customer.merged",
            _("Customers were merged into this one."),
            {"merged": _("ids of the customers merged away"), "merge": _("the merge record's id")},
        ),
        EventType("customer.unmerged", _("A merge was undone."), {"restored": _("ids of the customers restored")}),
        EventType("customer.erased", _("A customer's personal data was erased.")),
        EventType(
            "consent.changed",
            _("A customer gave or withdrew consent."),
            {"purpose": _("the purpose"), "granted": _("true when given, false when withdrawn")},
        ),
        EventType("segment.entered", _("A customer joined a segment."), {"segment": _("the segment's id")}),
        EventType("segment.left", _("A customer left a segment."), {"segment": _("the segment's id")}),
        EventType(
            "order.placed",
            _("A customer placed an order."),
            {"order": _("the order's id"), "total": _("the order's total, as a decimal string")},
        ),
        EventType(
            "order.refunded",
            _("An order was refunded, in part or in full."),
            {"order": _("the order's id"), "amount": _("the amount refunded, as a decimal string")},
        ),
        EventType("ticket.created", _("A ticket was opened for a customer."), {"ticket": _("the ticket's id")}),
        EventType("ticket.resolved", _("A customer's ticket was resolved."), {"ticket": _("the ticket's id")}),
        EventType(
            "survey.answered",
            _("A customer answered a survey."),
            {"survey": _("the survey's id"), "score": _("the score given")},
        ),
        EventType("message.delivered", _("A message reached the customer."), _MESSAGE_FIELDS),
        EventType("message.bounced", _("A message could not be delivered."), _MESSAGE_FIELDS),
        EventType("message.complained", _("The customer marked a message as spam."), _MESSAGE_FIELDS),
        EventType("message.opened", _("The customer opened an email (first time)."), _MESSAGE_FIELDS),
        EventType("message.clicked", _("The customer clicked a link in an email (first time)."), _MESSAGE_FIELDS),
        EventType(
            "form.submitted",
            _("A collection form was submitted."),
            {"form": _("the form's id"), "submission": _("the submission's id")},
        ),
    ]
}


@dataclass(frozen=True)
class Consumer:
    take: Callable[[Sequence[Event]], None]
    # Whether the consumer has any use for event `name` with `data` (a rule or a subscription that reacts to it):
    # events nobody wants are not recorded, so a bulk change costs nothing extra until someone listens.
    wants: Callable[[str, dict], bool]


CONSUMERS: dict[str, Consumer] = {}


def event_consumer(name: str, *, wants: Callable[[str, dict], bool] = lambda name, data: True):
    """Register `function(events)` to receive every dispatched batch of events, in id order (it picks its own)."""

    def register(function: Callable[[Sequence[Event]], None]):
        CONSUMERS[name] = Consumer(take=function, wants=wants)
        return function

    return register


def event_wanted(name: str, data: dict | None = None) -> bool:
    """Whether any consumer would take event `name` with `data`; publishers of bulk events ask before collecting ids."""
    _check(name)
    return any(consumer.wants(name, data or {}) for consumer in CONSUMERS.values())


def _check(name: str) -> None:
    if name not in CATALOGUE:
        raise ValueError(f"{name} is not in the event catalogue")


def event_publish(name: str, *, customer_id: int | None = None, data: dict | None = None) -> None:
    """Record that `name` happened, as part of the caller's transaction."""
    events_publish(name, customer_ids=[customer_id], data=data)


def events_publish(name: str, *, customer_ids: Iterable[int | None], data: dict | None = None) -> int:
    """Record one event `name` per customer (the same `data` for each), set-based, unless no consumer wants it;
    returns how many were recorded."""
    if not event_wanted(name, data):
        return 0
    now = timezone.now()
    rows = [Event(name=name, customer_id=pk, data=data or {}, occurred_at=now) for pk in customer_ids]
    Event.objects.bulk_create(rows, batch_size=5000)
    if rows:
        _dispatch_after_commit()
    return len(rows)


def _queue_dispatch() -> None:
    from cim.automation.tasks import events_dispatch_task

    try:
        events_dispatch_task.enqueue()
    except Exception:  # the queue being away must not fail the change; the periodic dispatch catches up
        logger.warning("Could not queue the event dispatch; the periodic one will take the events", exc_info=True)


def _dispatch_after_commit() -> None:
    """Queue one dispatch when the caller's transaction commits, however many events it published."""
    if not any(hook[1] is _queue_dispatch for hook in connection.run_on_commit):
        transaction.on_commit(_queue_dispatch)


@dataclass(frozen=True)
class DispatchRun:
    events: int
    batches: int


def events_dispatch(*, batch_size: int = 2000, max_batches: int = 50) -> DispatchRun:
    """Hand the events not yet dispatched to every consumer, oldest first, in batches; each batch is one
    transaction with marking it dispatched, so a worker stopped midway leaves it whole for the next run."""
    total = batches = 0
    while batches < max_batches:
        with transaction.atomic():
            events = list(
                Event.objects.filter(dispatched_at__isnull=True)
                .order_by("id")
                .select_for_update(skip_locked=True)[:batch_size]
            )
            if not events:
                break
            for consumer in CONSUMERS.values():
                consumer.take(events)
            Event.objects.filter(pk__in=[event.pk for event in events]).update(dispatched_at=timezone.now())
        total += len(events)
        batches += 1
        if len(events) < batch_size:
            break
    return DispatchRun(events=total, batches=batches)


def events_prune(*, older_than: timedelta = timedelta(days=30)) -> int:
    """Forget dispatched events after `older_than`: rules and webhooks keep their own records of what they did."""
    deleted, _ = Event.objects.filter(dispatched_at__lt=timezone.now() - older_than).delete()
    return deleted
