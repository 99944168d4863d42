"""Behaviour events in: a batch is stored set-based in one transaction and joined to its customers.

Identity: a message's `userId` is the business's own user id, shared by all sources, kept as
`ExternalId(system="segment")`; an `anonymousId` is per source (a browser, an app install) and is tied to a
customer by the first identify that names it (`AnonymousLink`). Events that arrived before their customer was
known get it set by one UPDATE when that identify comes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from cim.activities.models import AnonymousLink, BehaviourEvent, TouchPoint
from cim.activities.schemas import TrackingMessage
from cim.activities.traits import TRAIT_OF_FIELD, Traits, sensitive_traits_removed, traits_parse
from cim.audit.services import audit_record
from cim.automation.events import event_wanted, events_publish
from cim.core.api_errors import _pydantic_detail
from cim.customers.choices import SourceChannel
from cim.customers.models import Customer, ExternalId
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import customer_ids_by_contact
from cim.customers.services import customer_create, customer_update
from cim.ingest.models import EventSource
from cim.quality.normalize import clean_text

SEGMENT_SYSTEM = "segment"
NAME_FIELDS = ("display_name", "family_name", "given_name")
ADDRESS_KEY = ("country", "province", "city", "district", "street", "postal_code")
# A trait the customer service rejects is dropped and the save retried, a few times at most.
SAVE_ATTEMPTS = 4
MOBILE_LIBRARIES = ("ios", "android", "react-native", "flutter", "kotlin", "swift")


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    customers_created: int = 0
    rejected_traits: int = 0


def events_ingest(
    *, source: EventSource, messages: Sequence[TrackingMessage], received_at: datetime | None = None
) -> IngestResult:
    """Store `messages` of `source` (validated by the caller). Identify calls create or update customers.

    Idempotent on (source, messageId): a message seen before is skipped, its identify not applied again.
    """
    received_at = received_at or timezone.now()
    result = IngestResult()
    with transaction.atomic():
        fresh = _unseen(source, messages)
        result.duplicates = len(messages) - len(fresh)
        if not fresh:
            return result
        identities = _Identities(source, [message for _, message in fresh])
        trait_errors = {}
        for message_id, message in fresh:
            if message.type == "identify":
                trait_errors[message_id] = identities.identify(message, channel=_channel(source, message))
        events = [
            BehaviourEvent(
                source=source,
                customer_id=identities.customer_id(message),
                type=message.type,
                name=_name(message),
                user_id=message.userId or "",
                anonymous_id=message.anonymousId or "",
                properties=sensitive_traits_removed(
                    message.traits if message.type in ("identify", "group") else message.properties
                ),
                context=sensitive_traits_removed(message.context),
                channel=_channel(source, message),
                trait_errors=trait_errors.get(message_id, []),
                message_id=message_id,
                occurred_at=message.timestamp or message.originalTimestamp or received_at,
                received_at=received_at,
            )
            for message_id, message in fresh
        ]
        # ignore_conflicts: a retry racing this one on another connection stores each message once.
        BehaviourEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=500)
        joined = identities.join_earlier_events()
        _touch_points_update(events=events, joined=joined)
        _tracked_events_publish(events)
    result.stored = len(events)
    result.customers_created = identities.created
    result.rejected_traits = sum(len(errors) for errors in trait_errors.values())
    return result


def _tracked_events_publish(events: list[BehaviourEvent]) -> None:
    """Put the tracked events an automation rule listens to (by name) in the outbox; the rest never reach it, so
    ingestion costs nothing extra while no rule listens."""
    by_name: dict[str, list[int]] = {}
    for event in events:
        if event.type == BehaviourEvent.Type.TRACK and event.customer_id:
            by_name.setdefault(event.name, []).append(event.customer_id)
    for name, customer_ids in by_name.items():
        if event_wanted("event.tracked", {"name": name}):
            events_publish("event.tracked", customer_ids=customer_ids, data={"name": name})


def _unseen(source: EventSource, messages: Sequence[TrackingMessage]) -> list[tuple[str, TrackingMessage]]:
    """(message id, message) of the messages not stored before and not repeated earlier in this batch."""
    # Without a messageId a message cannot be recognised when sent again; it gets an id of its own.
    with_ids = [(m.messageId or f"cim-{uuid4().hex}", m) for m in messages]
    seen = set(
        BehaviourEvent.objects.filter(source=source, message_id__in={mid for mid, _ in with_ids}).values_list(
            "message_id", flat=True
        )
    )
    fresh = []
    for message_id, message in with_ids:
        if message_id not in seen:
            seen.add(message_id)
            fresh.append((message_id, message))
    return fresh


def _channel(source: EventSource, message: TrackingMessage) -> str:
    """The source's channel; for a source without one, what the sending SDK says about itself."""
    if source.source_channel:
        return source.source_channel
    library = message.context.get("library")
    name = str(library.get("name", "")).lower() if isinstance(library, dict) else ""
    if message.type == "screen" or any(word in name for word in MOBILE_LIBRARIES):
        return SourceChannel.APP
    if "javascript" in name or name.endswith(".js"):
        return SourceChannel.WEBSITE
    return SourceChannel.API


def _name(message: TrackingMessage) -> str:
    if message.type == "track":
        return message.event or ""
    if message.type in ("page", "screen"):
        path = message.properties.get("path")
        return message.name or message.category or (path[:200] if isinstance(path, str) else "")
    if message.type == "group":
        return message.groupId or ""
    if message.type == "alias":
        return message.previousId or ""
    return ""


class _Identities:
    """The customers of a batch's userIds and anonymousIds: read in two queries, extended by its identify calls."""

    def __init__(self, source: EventSource, messages: list[TrackingMessage]):
        self.source = source
        user_ids = {m.userId for m in messages if m.userId}
        anonymous_ids = {m.anonymousId for m in messages if m.anonymousId}
        self.by_user = dict(
            ExternalId.objects.filter(system=SEGMENT_SYSTEM, value__in=user_ids).values_list("value", "customer_id")
        )
        self.by_anonymous = dict(
            AnonymousLink.objects.filter(source=source, anonymous_id__in=anonymous_ids).values_list(
                "anonymous_id", "customer_id"
            )
        )
        self.new_users: list[str] = []
        self.new_anonymous: list[str] = []
        self.created = 0

    def customer_id(self, message: TrackingMessage) -> int | None:
        return self.by_user.get(message.userId) or self.by_anonymous.get(message.anonymousId)

    def identify(self, message: TrackingMessage, *, channel: str) -> list[dict]:
        """Create or update the message's customer from its traits and link its ids; returns the rejected traits."""
        traits = traits_parse(message.traits)
        known = self.customer_id(message)
        customer = Customer.objects.filter(pk=known).first() if known else _customer_by_contact(traits)
        if customer is None and traits.empty and not message.userId:
            return traits.errors  # an anonymous identify that says nothing: the event is all there is
        if customer is None:
            customer = _customer_save(None, traits, name=message.userId or message.anonymousId, channel=channel)
            if customer is not None:
                self.created += 1
        else:
            _customer_save(customer, traits)
        if customer is not None:
            self._link(message, customer)
        return traits.errors

    def _link(self, message: TrackingMessage, customer: Customer) -> None:
        note = f"event source {self.source.pk}"
        if message.userId and message.userId not in self.by_user:
            external_id = ExternalId.objects.create(customer=customer, system=SEGMENT_SYSTEM, value=message.userId)
            audit_record(actor=None, action="external_id.create", target=external_id, fields=["customer"], note=note)
            self.by_user[message.userId] = customer.pk
            self.new_users.append(message.userId)
        if message.anonymousId and message.anonymousId not in self.by_anonymous:
            link = AnonymousLink.objects.create(source=self.source, anonymous_id=message.anonymousId, customer=customer)
            audit_record(actor=None, action="anonymous_link.create", target=link, fields=["customer"], note=note)
            self.by_anonymous[message.anonymousId] = customer.pk
            self.new_anonymous.append(message.anonymousId)

    def join_earlier_events(self) -> set[int]:
        """Give the stored events of newly linked ids their customer, set-based; returns those customers' ids."""
        waiting = BehaviourEvent.objects.filter(customer__isnull=True)
        if self.new_anonymous:
            # order_by(): the models' default ordering would join and sort inside each subquery.
            links = AnonymousLink.objects.filter(source=self.source, anonymous_id=OuterRef("anonymous_id")).order_by()
            waiting.filter(source=self.source, anonymous_id__in=self.new_anonymous).update(
                customer_id=Subquery(links.values("customer_id")[:1])
            )
        if self.new_users:
            external_ids = ExternalId.objects.filter(system=SEGMENT_SYSTEM, value=OuterRef("user_id")).order_by()
            waiting.filter(user_id__in=self.new_users).update(
                customer_id=Subquery(external_ids.values("customer_id")[:1])
            )
        return {self.by_user[u] for u in self.new_users} | {self.by_anonymous[a] for a in self.new_anonymous}


def _customer_by_contact(traits: Traits) -> Customer | None:
    """The one customer with this email, else the one with this phone; else None."""
    for kind, value in (("email", traits.email_normalized), ("phone", traits.phone_e164)):
        if not value:
            continue
        ids = customer_ids_by_contact(kind=kind, values=[value]).get(value, set())
        if len(ids) == 1:
            return Customer.objects.get(pk=ids.pop())
    return None


def _contacts(customer: Customer | None, traits: Traits) -> dict[str, list[dict]]:
    """The contact lists to send the customer service: the customer's own plus the new one, when it is new.

    The service replaces a list sent whole, so the kept rows go with their value as entered, kind and flags.
    """
    contacts: dict[str, list[dict]] = {}
    if traits.email:
        emails = list(customer.emails.all()) if customer else []
        if traits.email_normalized not in {e.address for e in emails}:
            kept = [_kept(e, address=e.raw or e.address) for e in emails]
            contacts["emails"] = [*kept, {"address": traits.email}]
    if traits.phone:
        phones = list(customer.phones.all()) if customer else []
        if traits.phone_e164 not in {p.number for p in phones}:
            contacts["phones"] = [*[_kept(p, number=p.raw or p.number) for p in phones], {"number": traits.phone}]
    if traits.address:
        addresses = list(customer.addresses.all()) if customer else []
        new = {"country": "CN", **{k: clean_text(v) for k, v in traits.address.items()}}
        new_key = tuple(new.get(k, "") for k in ADDRESS_KEY)
        if all(tuple(getattr(a, k) for k in ADDRESS_KEY) != new_key for a in addresses):
            kept = [_kept(a, **{k: getattr(a, k) for k in ADDRESS_KEY}) for a in addresses]
            contacts["addresses"] = [*kept, new]
    return contacts


def _kept(row, **values) -> dict:
    return {**values, "kind": row.kind, "is_primary": row.is_primary, "is_verified": row.is_verified}


def _customer_save(customer: Customer | None, traits: Traits, *, name: str = "", channel: str = "") -> Customer | None:
    """Create (named `name` when the traits give no name) or update a customer through the customer services.

    A field the services reject is reported on the trait it came from and left out, so one bad trait does not
    lose the others. Returns the customer, or None when none could be created.
    """
    fields = {**traits.fields, **_contacts(customer, traits)}
    if customer is None and channel:
        fields["source_channel"] = channel
    for _attempt in range(SAVE_ATTEMPTS):
        if customer is None and not any(fields.get(f) for f in NAME_FIELDS):
            fields["display_name"] = name
        if customer is not None and not fields:
            return customer
        try:
            data = CustomerInput.model_validate(fields)
            if customer is None:
                return customer_create(data=data, actor=None, channel="ingest")
            return customer_update(customer=customer, data=data, actor=None)
        except PydanticValidationError as error:
            rejected = {str(e["loc"][0]): _pydantic_detail(e) for e in error.errors() if e["loc"]}
            problems = [(field, detail["code"], detail["message"]) for field, detail in rejected.items()]
        except ValidationError as error:
            problems = [(key.split(".")[0], "invalid", msgs[0]) for key, msgs in error.message_dict.items()]
        for field, code, message in problems:
            traits.reject(TRAIT_OF_FIELD.get(field, field), message, code)
        dropped = {field for field, _code, _message in problems if field in fields}
        if not dropped:
            return customer  # what failed is not from the traits (a required custom field): nothing to leave out
        for field in dropped:
            del fields[field]
    return customer


def _campaign(context: dict) -> dict[str, str]:
    """utm_source/medium/campaign from the context's `campaign` (analytics.js fills it from the page URL)."""
    campaign = context.get("campaign")
    if not isinstance(campaign, dict):
        return {}
    pairs = (("utm_source", "source"), ("utm_medium", "medium"), ("utm_campaign", "name"))
    return {ours: campaign[theirs][:200] for ours, theirs in pairs if isinstance(campaign.get(theirs), str)}


def _touch_points_update(*, events: list[BehaviourEvent], joined: set[int]) -> None:
    """Move first touches earlier and last touches later where these events, or newly joined ones, reach past them.

    Only the touches that change are written (one upsert), so a batch costs one read and one write here.
    """
    ends: dict[int, list[BehaviourEvent]] = {}  # customer id → [earliest event, latest event]
    for event in [*events, *_stored_ends(joined)]:
        if event.customer_id is None:
            continue
        pair = ends.setdefault(event.customer_id, [event, event])
        if event.occurred_at < pair[0].occurred_at:
            pair[0] = event
        if event.occurred_at >= pair[1].occurred_at:
            pair[1] = event
    if not ends:
        return
    stored = {
        (customer_id, kind): at
        for customer_id, kind, at in TouchPoint.objects.filter(customer_id__in=ends).values_list(
            "customer_id", "kind", "at"
        )
    }
    changed = []
    for customer_id, (first, last) in ends.items():
        at = stored.get((customer_id, TouchPoint.Kind.FIRST))
        if at is None or first.occurred_at < at:
            changed.append(_touch_point(customer_id, TouchPoint.Kind.FIRST, first))
        at = stored.get((customer_id, TouchPoint.Kind.LAST))
        if at is None or last.occurred_at >= at:
            changed.append(_touch_point(customer_id, TouchPoint.Kind.LAST, last))
    TouchPoint.objects.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["customer", "kind"],
        update_fields=["source", "channel", "utm_source", "utm_medium", "utm_campaign", "at"],
    )


def _stored_ends(customer_ids: set[int]) -> list[BehaviourEvent]:
    """The earliest and the latest stored event of each of these customers."""
    if not customer_ids:
        return []
    events = BehaviourEvent.objects.filter(customer_id=OuterRef("pk"))
    ends = Customer.objects.filter(pk__in=customer_ids).annotate(
        first=Subquery(events.order_by("occurred_at", "id").values("id")[:1]),
        last=Subquery(events.order_by("-occurred_at", "-id").values("id")[:1]),
    )
    ids = {event_id for pair in ends.values_list("first", "last") for event_id in pair if event_id}
    return list(
        BehaviourEvent.objects.filter(pk__in=ids).only("customer_id", "source_id", "channel", "context", "occurred_at")
    )


def _touch_point(customer_id: int, kind: str, event: BehaviourEvent) -> TouchPoint:
    return TouchPoint(
        customer_id=customer_id,
        kind=kind,
        source_id=event.source_id,
        channel=event.channel,
        at=event.occurred_at,
        **{"utm_source": "", "utm_medium": "", "utm_campaign": "", **_campaign(event.context)},
    )
