"""Webhooks: endpoints subscribed to event types, and the deliveries recorded for them (docs/webhooks.md).

The events outbox hands each batch of events to `webhooks_take` inside its dispatch transaction; it only records
one `WebhookDelivery` per event and matching endpoint, set-based, with the payload built then: the customer as the
endpoint's scope (a role or a user) sees them, sensitive fields that scope may not see left out, nothing but the
number for a customer whose processing is restricted. Sending, retrying and disabling failing endpoints are the
sender's (`cim.automation.webhook_sender`), run by the worker.
"""

import base64
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.accounts.roles import ROLE_SCOPE, Perm, Role, Scope
from cim.audit.services import audit_record
from cim.automation.events import CATALOGUE, event_consumer
from cim.automation.models import Event, WebhookDelivery, WebhookEndpoint
from cim.customers.models import Customer, Email, Phone, Tag
from cim.customers.services import _require
from cim.privacy.masking import FieldPolicy
from cim.privacy.registry import field_info
from cim.privacy.selectors import restricted_ids

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
SECRET_PREFIX = "whsec_"
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
DESCRIPTION_LENGTH = WebhookEndpoint._meta.get_field("description").max_length
URL_LENGTH = WebhookEndpoint._meta.get_field("url").max_length


def rotation_grace() -> timedelta:
    """How long the previous secret keeps signing after a rotation (CIM_WEBHOOK_ROTATION_GRACE_HOURS, 24)."""
    return timedelta(hours=float(getattr(settings, "CIM_WEBHOOK_ROTATION_GRACE_HOURS", 24)))


def secret_generate() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64 (192 bits, as the spec suggests)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def message_id(endpoint_id: int, key: str) -> str:
    """The `webhook-id` of a delivery: derived from what makes it unique, so it never changes for that delivery."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}:{key}".encode()).hexdigest()[:32]


# --- Which event types anyone subscribes to: asked by every publisher, so kept in memory -----------------------

# Other processes (the web server, other workers) see a change within this many seconds; this one at once.
WANTED_TTL = 5.0
_wanted: dict[str, object] = {"types": None, "at": 0.0}


def subscribed_types() -> frozenset[str]:
    """The event types at least one active endpoint subscribes to."""
    now = time.monotonic()
    if _wanted["types"] is None or now - float(_wanted["at"]) > WANTED_TTL:
        types: set[str] = set()
        for all_events, event_types in WebhookEndpoint.objects.filter(is_active=True).values_list(
            "all_events", "event_types"
        ):
            types.update(CATALOGUE if all_events else event_types)
        _wanted.update(types=frozenset(types), at=now)
    return _wanted["types"]  # type: ignore[return-value]


def subscriptions_forget() -> None:
    """Forget the cached set: the next publisher reads it again."""
    _wanted["types"] = None


def subscriptions_changed() -> None:
    """Forget the cached set, now and again when the change commits (another transaction may have read it)."""
    subscriptions_forget()
    transaction.on_commit(subscriptions_forget)


# --- Payloads ----------------------------------------------------------------------------------------------------

# (payload key, model, field): every field a payload may carry, each classified by the PI registry
# (`test_webhooks_payloads` fails for one that is not). Sensitive ones are left out where the scope would see a mask.
CUSTOMER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("kind", "customers.customer", "kind"),
    ("display_name", "customers.customer", "display_name"),
    ("family_name", "customers.customer", "family_name"),
    ("given_name", "customers.customer", "given_name"),
    ("gender", "customers.customer", "gender"),
    ("birthday", "customers.customer", "birthday"),
    ("company", "customers.customer", "company"),
    ("lifecycle_stage", "customers.customer", "lifecycle_stage"),
    ("value_tier", "customers.customer", "value_tier"),
    ("status", "customers.customer", "status"),
    ("owner", "customers.customer", "owner"),
    ("team", "customers.customer", "team"),
    ("tags", "customers.customer", "tags"),
    ("created_at", "customers.customer", "created_at"),
    ("updated_at", "customers.customer", "updated_at"),
    ("phone", "customers.phone", "number"),
    ("email", "customers.email", "address"),
)


def _value(customer: Customer, key: str):
    if key == "tags":
        return [tag.name for tag in customer.tag_list]
    if key == "phone":
        return customer.primary_phones[0].number if customer.primary_phones else None
    if key == "email":
        return customer.primary_emails[0].address if customer.primary_emails else None
    if key in ("owner", "team"):
        return getattr(customer, f"{key}_id")
    value = getattr(customer, key)
    return value.isoformat() if hasattr(value, "isoformat") else value


def scope_viewer(endpoint: WebhookEndpoint):
    """Who the endpoint sees customers as: its user, or a stand-in of its role (roles that see all customers only;
    an unsaved user owns nobody, so a narrower role could not mean anything)."""
    if endpoint.scope_user_id:
        return endpoint.scope_user
    return User(role=endpoint.scope_role, is_active=True)


def _customers(ids: Iterable[int]) -> dict[int, Customer]:
    rows = Customer.objects.filter(pk__in=list(ids)).prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"), to_attr="tag_list"),
        Prefetch("phones", queryset=Phone.objects.filter(is_primary=True), to_attr="primary_phones"),
        Prefetch("emails", queryset=Email.objects.filter(is_primary=True), to_attr="primary_emails"),
    )
    return {customer.pk: customer for customer in rows}


class CustomerPayloads:
    """The `customer` object of payloads, for customers loaded once and endpoints of different scopes."""

    def __init__(self, customer_ids: Iterable[int]):
        ids = {pk for pk in customer_ids if pk}
        self.customers = _customers(ids) if ids else {}
        self.restricted = restricted_ids(self.customers) if self.customers else set()

    def for_endpoint(self, endpoint: WebhookEndpoint) -> dict[int, dict]:
        """Customer id → its payload object, for the customers the endpoint's scope sees (the others are absent)."""
        if not self.customers:
            return {}
        viewer = scope_viewer(endpoint)
        if not viewer.is_active:
            return {}
        visible = Customer.objects.visible_to(viewer)
        if ROLE_SCOPE.get(viewer.role) != Scope.ALL:
            visible_ids = set(visible.filter(pk__in=list(self.customers)).values_list("pk", flat=True))
        else:
            visible_ids = set(self.customers)
        policy = FieldPolicy(viewer)
        return {pk: self.payload(self.customers[pk], policy) for pk in visible_ids}

    def payload(self, customer: Customer, policy: FieldPolicy) -> dict:
        data: dict = {"number": customer.number}
        if customer.pk in self.restricted:
            data["restricted"] = True  # processing restricted (a data-subject request): nothing else leaves
            return data
        for key, model, field in CUSTOMER_FIELDS:
            entry = field_info(model, field)
            if entry is not None and entry.sensitive and not policy.shows(entry.mask, customer.owner_id):
                continue  # never a masked value: the field is simply not there
            data[key] = _value(customer, key)
        return data


def envelope(*, event_type: str, occurred_at: datetime, data: dict, version: int = PAYLOAD_VERSION) -> dict:
    """The body every delivery carries (Standard Webhooks' type/timestamp/data, plus the payload's version)."""
    return {"type": event_type, "version": version, "timestamp": occurred_at.isoformat(), "data": data}


# --- The outbox's consumer: record deliveries, never send ---------------------------------------------------------


def _queue_send() -> None:
    from cim.automation.tasks_webhooks import webhooks_send_task

    try:
        webhooks_send_task.enqueue()
    except Exception:  # the queue being away must not fail the dispatch; the periodic sender catches up
        logger.warning("Could not queue the webhook sender; the periodic one will send", exc_info=True)


def send_after_commit() -> None:
    """Queue one sending job when the current transaction commits."""
    if not any(hook[1] is _queue_send for hook in connection.run_on_commit):
        transaction.on_commit(_queue_send)


@event_consumer("webhooks", wants=lambda name, data: name in subscribed_types())
def webhooks_take(events: Sequence[Event]) -> int:
    """One delivery per event and active endpoint subscribed to its type whose scope sees its customer. The
    endpoints are read here, not from the cache of `subscribed_types`: this process's copy may be seconds old."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True).select_related("scope_user")
        if any(endpoint.subscribes(event.name) for event in events)
    ]
    if not endpoints:
        return 0
    payloads = CustomerPayloads(
        event.customer_id for event in events if any(e.subscribes(event.name) for e in endpoints)
    )
    rows = []
    for endpoint in endpoints:
        seen = payloads.for_endpoint(endpoint)
        for event in events:
            if not endpoint.subscribes(event.name):
                continue
            data = dict(event.data)
            if event.customer_id:
                if event.customer_id not in seen:
                    continue  # outside the endpoint's scope (or gone)
                data["customer"] = seen[event.customer_id]
            version = CATALOGUE[event.name].version if event.name in CATALOGUE else PAYLOAD_VERSION
            key = f"event:{event.pk}"
            rows.append(
                WebhookDelivery(
                    endpoint_id=endpoint.pk,
                    key=key,
                    message_id=message_id(endpoint.pk, key),
                    event_id=event.pk,
                    event_type=event.name,
                    customer_id=event.customer_id,
                    payload=envelope(event_type=event.name, occurred_at=event.occurred_at, data=data, version=version),
                    next_attempt_at=timezone.now(),
                )
            )
    # On the key: a batch handed over twice (a dispatch retried) records each delivery once.
    WebhookDelivery.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    if rows:
        send_after_commit()
    return len(rows)


def webhook_send(
    *, endpoint: WebhookEndpoint, event_type: str, payload: dict, key: str, customer_id: int | None = None
) -> WebhookDelivery | None:
    """Send `payload` to `endpoint` as `event_type` (a rule's webhook action), once per `key`: calling again with
    the same key returns the first delivery. With `customer_id`, `data.customer` is added as the endpoint's scope
    sees that customer, and nothing is sent (None) when it does not see them."""
    if not EVENT_TYPE.match(event_type) or len(event_type) > 60:
        raise ValidationError({"event_type": [_("An event type is lower-case words joined by dots.")]})
    if not key or len(key) > 200:
        raise ValidationError({"key": [_("Give a key of at most 200 characters.")]})
    existing = WebhookDelivery.objects.filter(endpoint=endpoint, key=key).first()
    if existing is not None:
        return existing
    data = dict(payload)
    if customer_id:
        seen = CustomerPayloads([customer_id]).for_endpoint(endpoint)
        if customer_id not in seen:
            return None
        data["customer"] = seen[customer_id]
    version = CATALOGUE[event_type].version if event_type in CATALOGUE else PAYLOAD_VERSION
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    endpoint=endpoint,
                    key=key,
                    message_id=message_id(endpoint.pk, key),
                    event_type=event_type,
                    customer_id=customer_id,
                    payload=envelope(event_type=event_type, occurred_at=timezone.now(), data=data, version=version),
                )
            ],
            ignore_conflicts=True,
        )
        send_after_commit()
    return WebhookDelivery.objects.get(endpoint=endpoint, key=key)


# --- Endpoints ---------------------------------------------------------------------------------------------------


def _url(value) -> str:
    url = str(value or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("Enter an http:// or https:// address."))
    if len(url) > URL_LENGTH:
        raise ValidationError(_("At most %(n)s characters.") % {"n": URL_LENGTH})
    return url


def _event_types(value) -> list[str]:
    names = [value] if isinstance(value, str) else list(value or [])
    names = list(dict.fromkeys(str(name).strip() for name in names if str(name).strip()))
    unknown = [name for name in names if name not in CATALOGUE]
    if unknown:
        raise ValidationError(_("Not in the event catalogue: %(names)s.") % {"names": ", ".join(unknown)[:200]})
    return names


def _scope(data: dict) -> dict:
    role, user = data.get("scope_role") or "", data.get("scope_user")
    if bool(role) == bool(user):
        raise ValidationError({"scope_role": [_("Choose either a role or a user as the scope.")]})
    if user:
        found = user if isinstance(user, User) else User.objects.filter(username=str(user)).first()
        if found is None or not found.is_active:
            raise ValidationError({"scope_user": [_("No active user of that name.")]})
        return {"scope_role": "", "scope_user": found}
    if role not in Role.values:
        raise ValidationError({"scope_role": [_("Choose one of: %(keys)s.") % {"keys": ", ".join(Role.values)}]})
    if ROLE_SCOPE.get(role) != Scope.ALL:
        raise ValidationError(
            {"scope_role": [_("This role sees only some customers; choose a user of it as the scope instead.")]}
        )
    return {"scope_role": role, "scope_user": None}


CHECKS = {
    "url": _url,
    "description": lambda value: str(value or "").strip()[:DESCRIPTION_LENGTH],
    "event_types": _event_types,
    "all_events": bool,
    "is_active": bool,
}


def _clean(data: dict, *, instance: WebhookEndpoint | None = None) -> dict:
    cleaned, errors = {}, {}
    for name, value in data.items():
        if name in CHECKS:
            try:
                cleaned[name] = CHECKS[name](value)
            except ValidationError as error:
                errors[name] = error.messages
    if "scope_role" in data or "scope_user" in data:
        current = {
            "scope_role": instance.scope_role if instance else "",
            "scope_user": instance.scope_user if instance else None,
        }
        if "scope_role" in data and "scope_user" not in data and data.get("scope_role"):
            current["scope_user"] = None
        if "scope_user" in data and "scope_role" not in data and data.get("scope_user"):
            current["scope_role"] = ""
        try:
            cleaned.update(_scope({**current, **{k: v for k, v in data.items() if k in current}}))
        except ValidationError as error:
            errors.update(error.message_dict)
    all_events = cleaned.get("all_events", instance.all_events if instance else False)
    event_types = cleaned.get("event_types", instance.event_types if instance else [])
    if not errors.get("event_types") and not all_events and not event_types:
        errors["event_types"] = [_("Choose at least one event type, or all of them.")]
    if errors:
        raise ValidationError(errors)
    return cleaned


def webhook_endpoint_create(*, data: dict, actor) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is shown this once (it stays readable to administrators)."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    if not data.get("url"):
        raise ValidationError({"url": [_("This field is required.")]})
    values = _clean({"scope_role": "", "scope_user": None, **data})
    secret = secret_generate()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(secret=secret, created_by=actor, **values)
        audit_record(actor=actor, action="webhook_endpoint.create", target=endpoint, fields=sorted(values))
        subscriptions_changed()
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict, actor) -> WebhookEndpoint:
    """Change the given fields; switching an endpoint back on clears its failure streak."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    values = _clean(data, instance=endpoint)
    changed = [name for name, value in values.items() if getattr(endpoint, name) != value]
    if not changed:
        return endpoint
    with transaction.atomic():
        for name in changed:
            setattr(endpoint, name, values[name])
        if "is_active" in changed and endpoint.is_active:
            endpoint.failure_count, endpoint.failing_since = 0, None
            endpoint.disabled_at, endpoint.disabled_reason = None, ""
            changed += ["failure_count", "failing_since", "disabled_at", "disabled_reason"]
        endpoint.save(update_fields=[*changed, "updated_at"])
        audit_record(actor=actor, action="webhook_endpoint.update", target=endpoint, fields=changed)
        subscriptions_changed()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor) -> None:
    """Delete an endpoint with its delivery log."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    with transaction.atomic():
        audit_record(actor=actor, action="webhook_endpoint.delete", target=endpoint, fields=["url"])
        endpoint.delete()
        subscriptions_changed()


def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor, now: datetime | None = None) -> str:
    """A new signing secret, returned once; the old one signs beside it for the grace period."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    now = now or timezone.now()
    secret = secret_generate()
    with transaction.atomic():
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + rotation_grace()
        endpoint.secret = secret
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        audit_record(actor=actor, action="webhook_endpoint.rotate_secret", target=endpoint, fields=["secret"])
    return secret


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets a message is signed with now: the current one, and the previous one during its grace."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        found.append(endpoint.previous_secret)
    return found


# --- Replays and pruning -----------------------------------------------------------------------------------------


def deliveries_replay(
    *,
    actor,
    deliveries=None,
    endpoint: WebhookEndpoint | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: Iterable[str] = (WebhookDelivery.Status.FAILED, WebhookDelivery.Status.DEAD),
    now: datetime | None = None,
) -> int:
    """Send deliveries again from their first attempt: the given ones (any status), or those of `statuses`
    created in [since, until), of one endpoint or all. Same `webhook-id` as before. Returns how many."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    now = now or timezone.now()
    if deliveries is not None:
        rows = WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries])
    else:
        rows = WebhookDelivery.objects.filter(status__in=list(statuses))
        if endpoint is not None:
            rows = rows.filter(endpoint=endpoint)
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        if until is not None:
            rows = rows.filter(created_at__lt=until)
    with transaction.atomic():
        ids = list(rows.values_list("pk", flat=True))
        count = WebhookDelivery.objects.filter(pk__in=ids).update(
            status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=now
        )
        if count:
            note = f"{count} deliveries" + (f" of endpoint {endpoint.pk}" if endpoint else "")
            audit_record(
                actor=actor,
                action="webhook_delivery.replay",
                target=endpoint,
                target_type="automation.webhookdelivery",
                target_id=str(ids[0]) if len(ids) == 1 else "",
                fields=["status"],
                note=note,
            )
            send_after_commit()
    return count


def deliveries_prune(*, older_than: timedelta = timedelta(days=30), now: datetime | None = None) -> int:
    """Forget deliveries created more than `older_than` ago, whatever became of them."""
    cutoff = (now or timezone.now()) - older_than
    deleted, _counts = WebhookDelivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted
