"""Messages to customers: templates, queueing with consent, caps and quiet hours, and exactly-once delivery.

Campaigns, rules and care greetings all send through `messages_queue`, which records one `Message` per customer
under an idempotency key (queueing twice is a no-op) after the checks that can be made in bulk; the background job
`messages_deliver` then claims due messages, checks consent again at send time, renders each template with the
customer's current data and hands it to the channel's provider. See docs/messages.md.
"""

import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from cim.audit.services import audit_record

# Delivery receipts live with tracking; named here too, where the messaging contract (ISSUE 8) puts them.
from cim.automation.message_tracking import message_status_update as message_status_update
from cim.automation.models import Message, MessageTemplate, SuppressedAddress
from cim.automation.models.messages import Channel, MessageStatus, SuppressionReason
from cim.core.blind_index import blind_index
from cim.core.bulk import insert_rows, value_adapter
from cim.customers.models import Customer, Email, ExternalId, Phone
from cim.privacy.models import Consent
from cim.privacy.registry import MESSAGE_CONTEXT_FIELDS
from cim.privacy.selectors import consent_holds, restricted_ids

logger = logging.getLogger(__name__)

CHUNK = 5000
# Messages that count toward a frequency cap: everything handed over or about to be.
_CAPPED = [MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED]
_CAPPED += [MessageStatus.BOUNCED, MessageStatus.COMPLAINED, MessageStatus.REVIEW]


# --- Templates -----------------------------------------------------------------------------------------------------

# Jinja2's sandbox over plain dicts: a template can read the values it is given and nothing else (no attributes of
# Python objects, no loaders, no imports), so people who write templates cannot reach the database or settings.
_TEXT = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
_HTML = SandboxedEnvironment(autoescape=True, keep_trailing_newline=True)
# Previews and checks are strict, so a misspelt variable shows; sending is lenient, so a missing value is blank.
_STRICT_TEXT = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True, undefined=StrictUndefined)
_STRICT_HTML = SandboxedEnvironment(autoescape=True, keep_trailing_newline=True, undefined=StrictUndefined)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html: str
    params: dict[str, str] = field(default_factory=dict)


def template_check(*, subject: str = "", body: str = "", html: str = "", params: Mapping | None = None) -> None:
    """Raise a ValidationError naming each field whose template does not compile."""
    errors: dict[str, list[str]] = {}
    for name, source, env in (("subject", subject, _TEXT), ("body", body, _TEXT), ("html", html, _HTML)):
        try:
            env.from_string(source or "")
        except TemplateSyntaxError as error:
            errors[name] = [_("Line %(line)s: %(message)s") % {"line": error.lineno, "message": error.message}]
    if params is not None:
        if not isinstance(params, Mapping) or not all(isinstance(v, str) for v in params.values()):
            errors["params"] = [_("Give each parameter as text.")]
        else:
            for key, source in params.items():
                try:
                    _TEXT.from_string(source)
                except TemplateSyntaxError as error:
                    errors.setdefault("params", []).append(f"{key}: {error.message}")
    if errors:
        raise ValidationError(errors)


@lru_cache(maxsize=512)
def _compiled(env: SandboxedEnvironment, source: str):
    return env.from_string(source)


def customer_contexts(customer_ids: Iterable[int]) -> dict[int, dict]:
    """What templates may say of each customer: the registry's messaging fields, as plain values."""
    fields = ["id", *MESSAGE_CONTEXT_FIELDS]
    contexts = {}
    for row in Customer.objects.filter(pk__in=list(customer_ids)).values(*fields):
        contexts[row.pop("id")] = {k: ("" if v is None else v) for k, v in row.items()}
    return contexts


def _uses_recommendations(template: MessageTemplate) -> bool:
    sources = [template.subject, template.body, template.html, *(template.params or {}).values()]
    return any("recommendations" in (source or "") for source in sources)


def _recommendations(customer_ids: list[int]) -> dict[int, list[dict]]:
    from cim.analytics.basket import recommendations_for

    return {
        pk: [{"name": r.name, "sku": r.sku, "category": r.category} for r in items]
        for pk, items in recommendations_for(customer_ids).items()
    }


def template_render(
    template: MessageTemplate,
    customer: Customer | dict,
    extra: Mapping | None = None,
    *,
    recommendations: list[dict] | None = None,
    strict: bool = False,
) -> Rendered:
    """Render `template` for one customer (a Customer, or its context from `customer_contexts`) with `extra`."""
    if isinstance(customer, Customer):
        pk = customer.pk
        customer = customer_contexts([pk]).get(pk, {})
        if recommendations is None and _uses_recommendations(template):
            recommendations = _recommendations([pk]).get(pk, [])
    context = {**(extra or {}), "customer": customer, "recommendations": recommendations or []}
    text, html = (_STRICT_TEXT, _STRICT_HTML) if strict else (_TEXT, _HTML)
    return Rendered(
        subject=_compiled(text, template.subject or "").render(context).strip(),
        body=_compiled(text, template.body or "").render(context),
        html=_compiled(html, template.html).render(context) if template.html else "",
        params={key: _compiled(text, source).render(context) for key, source in (template.params or {}).items()},
    )


def template_preview(*, template: MessageTemplate, customer: Customer, extra: Mapping | None = None) -> Rendered:
    """The message `customer` would get; strict, so a ValidationError names a misspelt variable."""
    try:
        return template_render(template, customer, extra, strict=True)
    except (TemplateSyntaxError, UndefinedError, SecurityError) as error:
        raise ValidationError({"body": [str(error)]}) from error


# --- Checks: consent, caps, quiet hours, addresses ---------------------------------------------------------------


def _caps() -> dict[str, tuple[int, int]]:
    """CIM_MESSAGE_CAPS, e.g. "marketing=3/7": at most 3 marketing messages per customer in any 7 days."""
    caps = {}
    for item in filter(None, (part.strip() for part in settings.CIM_MESSAGE_CAPS.split(","))):
        purpose, _sep, rule = item.partition("=")
        count, _sep, days = rule.partition("/")
        caps[purpose.strip()] = (int(count), int(days or 1))
    return caps


def _quiet_window() -> tuple[time, time] | None:
    spec = settings.CIM_MESSAGE_QUIET_HOURS.strip()
    if not spec:
        return None
    start, _sep, end = spec.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def quiet_until(at: datetime, purpose: str) -> datetime | None:
    """When quiet hours (CIM_MESSAGE_QUIET_HOURS in the business time zone) that hold `at` end; None outside them
    or for a purpose exempt from them (CIM_MESSAGE_QUIET_HOURS_EXEMPT)."""
    window = _quiet_window()
    exempt = {p.strip() for p in settings.CIM_MESSAGE_QUIET_HOURS_EXEMPT.split(",")}
    if window is None or purpose in exempt:
        return None
    start, end = window
    local = at.astimezone(ZoneInfo(settings.TIME_ZONE))
    now = local.time()
    if start <= end:
        inside = start <= now < end
        end_day = local.date()
    else:  # over midnight: 21:00-08:00
        inside = now >= start or now < end
        end_day = local.date() + timedelta(days=1) if now >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=local.tzinfo)


def _address_keys(channel: str, customer_ids: list[int]) -> dict[int, str]:
    """Each customer's address key on `channel` (primary address first)."""
    if channel == Channel.WECHAT:
        rows = ExternalId.objects.filter(customer_id__in=customer_ids, system=settings.CIM_WECHAT_ID_SYSTEM)
        found: dict[int, str] = {}
        for pk, value in rows.order_by("-id").values_list("customer_id", "value"):
            found[pk] = blind_index("wechat", value)
        return found
    model = Email if channel == Channel.EMAIL else Phone
    found = {}
    rows = model.objects.filter(customer_id__in=customer_ids).order_by("is_primary", "-id")
    for pk, key in rows.values_list("customer_id", "match_key"):
        found[pk] = key  # the primary (or the oldest) comes last and wins
    return found


def addresses(channel: str, customer_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Each customer's address on `channel` and its key, decrypted: for sending only."""
    if channel == Channel.WECHAT:
        rows = ExternalId.objects.filter(customer_id__in=customer_ids, system=settings.CIM_WECHAT_ID_SYSTEM)
        pairs = rows.order_by("-id").values_list("customer_id", "value")
        return {pk: (value, blind_index("wechat", value)) for pk, value in pairs}
    model = Email if channel == Channel.EMAIL else Phone
    value_field = "address" if channel == Channel.EMAIL else "number"
    found = {}
    for row in model.objects.filter(customer_id__in=customer_ids).order_by("is_primary", "-id"):
        found[row.customer_id] = (getattr(row, value_field), row.match_key)
    return found


def _suppressed_keys(channel: str, keys: Iterable[str]) -> set[str]:
    keys = [k for k in set(keys) if k]
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(
            SuppressedAddress.objects.filter(channel=channel, address_key__in=keys[start : start + CHUNK]).values_list(
                "address_key", flat=True
            )
        )
    return found


def _cap_reached(customer_ids: list[int], purpose: str, now: datetime) -> set[int]:
    cap = _caps().get(purpose)
    if not cap:
        return set()
    count, days = cap
    rows = (
        Message.objects.filter(customer_id__in=customer_ids, purpose=purpose, status__in=_CAPPED)
        .filter(created_at__gte=now - timedelta(days=days))
        .values("customer_id")
        .annotate(n=Count("id"))
        .filter(n__gte=count)
    )
    return {row["customer_id"] for row in rows}


def _language(value: str) -> str:
    return "zh-hans" if value.lower().startswith("zh") else ("en" if value.lower().startswith("en") else "")


def customer_languages(customer_ids: list[int], purpose: str) -> dict[int, str]:
    """The language each customer last consented in (for `purpose`); customers have no language field of their own,
    and the consent notice is what they read and accepted."""
    rows = Consent.objects.filter(customer_id__in=customer_ids, purpose=purpose).exclude(language="")
    found: dict[int, str] = {}
    for pk, language in rows.order_by("at", "id").values_list("customer_id", "language"):
        if _language(language):
            found[pk] = _language(language)
    return found


def template_in(templates: Mapping[str, MessageTemplate], language: str) -> MessageTemplate:
    """Of templates by language, the one for a customer who reads `language` ("" when not known): theirs, else the
    default language's, else the first."""
    return templates.get(language) or templates.get(settings.LANGUAGE_CODE) or next(iter(templates.values()))


# --- Queueing ---------------------------------------------------------------------------------------------------

# A queued message's columns as messages_queue writes them: those that vary by customer, then those one call shares.
_QUEUE_FIELDS = ["customer", "template", "key", "status", "reason", "send_after", "address_key"]
_QUEUE_FIELDS += ["channel", "purpose", "origin", "campaign_id", "rule_run_id", "context", "attempts", "claimed_by"]
_QUEUE_FIELDS += ["provider", "provider_message_id", "error", "created_at", "status_at"]


@dataclass
class QueueResult:
    queued: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    # Keys queued before: the call is a no-op for them.
    duplicates: int = 0

    def suppress(self, reason: str, n: int = 1) -> None:
        if n:
            self.suppressed[reason] = self.suppressed.get(reason, 0) + n


def messages_queue(
    *,
    customer_ids: Iterable[int],
    template: MessageTemplate | Mapping[str, MessageTemplate],
    purpose: str | None = None,
    key_for: Callable[[int], str] | None = None,
    key_prefix: str = "",
    extra_context: Mapping | None = None,
    origin: str = "manual",
    campaign_id: int | None = None,
    rule_run_id: int | None = None,
    send_after: datetime | None = None,
    now: datetime | None = None,
    actor,
) -> QueueResult:
    """Queue one message per customer, set-based: those that may not be sent are recorded as suppressed with the
    reason (no consent for the purpose, restricted processing, no address, an address that bounced, the frequency
    cap), the others queued, deferred past quiet hours. Each message's key is `key_for(customer_id)`, or
    `{key_prefix}:customer:{id}`; a key queued before is left alone, so queueing twice is a no-op.

    `template` is one template, or templates by language ("zh-hans", "en"): each customer gets the one in the
    language they consented in, else the default language's. `now` is the moment caps and quiet hours are judged
    at (the clock's by default; a campaign's step passes its own)."""
    templates = dict(template) if isinstance(template, Mapping) else {template.language: template}
    if not templates:
        raise ValidationError({"template": [_("Choose a template.")]})
    channels = {t.channel for t in templates.values()}
    if len(channels) != 1:
        raise ValidationError({"template": [_("The templates of one message must share a channel.")]})
    channel = channels.pop()
    purpose = purpose or next(iter(templates.values())).purpose
    if key_for is None:
        if not key_prefix:
            raise ValueError("messages_queue needs key_for or key_prefix")
        key_for = lambda pk: f"{key_prefix}:customer:{pk}"  # noqa: E731
    ids = list(dict.fromkeys(int(pk) for pk in customer_ids))
    result = QueueResult()
    now = now or timezone.now()
    due = send_after or now
    deferred = quiet_until(due, purpose)
    # The columns every message of this call shares, adapted once (see _QUEUE_FIELDS).
    at = connection.ops.adapt_datetimefield_value(now)
    context = value_adapter(Message._meta.get_field("context"))(dict(extra_context or {}))
    constants = (channel, purpose, origin, campaign_id, rule_run_id, context, 0, "", "", "", "", at, at)
    queued_due = connection.ops.adapt_datetimefield_value(deferred or send_after)
    key_length = Message._meta.get_field("key").max_length
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            keys = {pk: key_for(pk) for pk in chunk}
            existing = set(Message.objects.filter(key__in=list(keys.values())).values_list("key", flat=True))
            chunk = [pk for pk in chunk if keys[pk] not in existing]
            result.duplicates += len(keys) - len(chunk)
            if not chunk:
                continue
            held = consent_holds(chunk, purpose)
            restricted = restricted_ids(chunk)
            address_keys = _address_keys(channel, chunk)
            blocked = _suppressed_keys(channel, address_keys.values())
            capped = _cap_reached(chunk, purpose, now)
            languages = customer_languages(chunk, purpose) if len(templates) > 1 else {}
            rows = []
            for pk in chunk:
                chosen = template_in(templates, languages.get(pk, ""))
                reason = (
                    SuppressionReason.RESTRICTED
                    if pk in restricted
                    else SuppressionReason.CONSENT
                    if pk not in held
                    else SuppressionReason.NO_ADDRESS
                    if pk not in address_keys
                    else SuppressionReason.SUPPRESSED_ADDRESS
                    if address_keys[pk] in blocked
                    else SuppressionReason.FREQUENCY_CAP
                    if pk in capped
                    else ""
                )
                if reason:
                    result.suppress(reason)
                else:
                    result.queued += 1
                status, due = (MessageStatus.SUPPRESSED, None) if reason else (MessageStatus.QUEUED, queued_due)
                rows.append((pk, chosen.pk, keys[pk][:key_length], status, reason, due, address_keys.get(pk, "")))
            insert_rows(Message, _QUEUE_FIELDS, (row + constants for row in rows), ignore_conflicts=True)
        if result.queued or result.suppressed:
            audit_record(
                actor=actor,
                action="messages.queue",
                target=None,
                target_type="automation.message",
                target_id=key_prefix[:40],  # the audit log keeps ids of up to 40 characters
                note=f"channel={channel} purpose={purpose} origin={origin} queued={result.queued} "
                f"suppressed={sum(result.suppressed.values())}",
            )
        if result.queued:
            _deliver_after_commit()
    return result


def _queue_delivery() -> None:
    from cim.automation.tasks_messages import messages_deliver_task

    try:
        messages_deliver_task.enqueue()
    except Exception:  # the queue being away must not fail the sender; the periodic delivery catches up
        logger.warning("Could not queue message delivery; the periodic run will send", exc_info=True)


def _deliver_after_commit() -> None:
    if not any(hook[1] is _queue_delivery for hook in connection.run_on_commit):
        transaction.on_commit(_queue_delivery)


# --- Delivery ---------------------------------------------------------------------------------------------------


@dataclass
class DeliverRun:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0
    deferred: int = 0
    review: int = 0
    # Stopped at the limit with messages possibly still due: the caller should run again.
    more: bool = False
    # A provider could not be reached: the run stopped, its messages wait in the queue for the next one.
    unavailable: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One message ready for a provider: where it goes and what it says."""

    message: Message
    address: str
    address_key: str
    rendered: Rendered
    template: MessageTemplate | None


class NotDelivered(Exception):
    """The provider is sure the message was not accepted; `retry` when trying again later may work (4xx)."""

    def __init__(self, detail: str, *, retry: bool = False):
        super().__init__(detail)
        self.retry = retry


def messages_reap(*, now: datetime | None = None) -> int:
    """Messages a stopped worker had handed over without hearing back (its lease ran out while `sending`): they may
    or may not have arrived, so they go to review instead of being sent again. At most one per worker."""
    now = now or timezone.now()
    return Message.objects.filter(status=MessageStatus.SENDING, claimed_until__lt=now).update(
        status=MessageStatus.REVIEW,
        status_at=now,
        claimed_by="",
        claimed_until=None,
        error="The worker stopped while handing this message over; it may not have arrived.",
    )


def _claim(worker: str, batch_size: int, now: datetime) -> list[Message]:
    lease = now + timedelta(seconds=settings.CIM_MESSAGE_LEASE_SECONDS)
    token = f"{worker}:{uuid.uuid4().hex[:12]}"[:64]
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = Q(send_after__isnull=True) | Q(send_after__lte=now)
    with transaction.atomic():
        ids = list(
            Message.objects.filter(due, free, status=MessageStatus.QUEUED)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:batch_size]
        )
        # Conditional, so two workers on a database without row locks (SQLite) cannot both take a message.
        Message.objects.filter(free, pk__in=ids, status=MessageStatus.QUEUED).update(
            claimed_by=token, claimed_until=lease
        )
    return list(Message.objects.filter(claimed_by=token, status=MessageStatus.QUEUED).select_related("template"))


def _finish(messages: list[Message], now: datetime, **values) -> None:
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(
        claimed_by="", claimed_until=None, status_at=now, **values
    )


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2**attempts, 240))


def messages_deliver(*, limit: int = 20_000, batch_size: int = 500, worker: str = "") -> DeliverRun:
    """Send due queued messages, `batch_size` at a time, until none is due or `limit` were handled.

    Exactly once (docs/messages.md): each message is marked `sending` and committed before the provider's point of
    no return (the SMTP DATA terminator, the HTTP request), a window of messages at a time (one per SMTP
    connection, CIM_EMAIL_CONNECTIONS); the previous window's outcomes are written in the same commit. A worker
    killed at any moment leaves at most one window `sending`, which `messages_reap` sends to review once its lease
    runs out; every other message was either handed over and recorded, or not handed over and still queued."""
    from cim.automation.message_providers import provider_for

    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    run = DeliverRun()
    run.review = messages_reap()
    handled = 0
    while handled < limit:
        now = timezone.now()
        batch = _claim(worker, min(batch_size, limit - handled), now)
        if not batch:
            break
        handled += len(batch)
        run.more = handled >= limit
        by_channel: dict[str, list[Message]] = defaultdict(list)
        for message in batch:
            by_channel[message.channel].append(message)
        for channel, messages in by_channel.items():
            ready = _screen(messages, now, run)
            if not ready:
                continue
            provider = provider_for(channel, messages=len(ready))
            try:
                provider.__enter__()
            except Exception:  # the server cannot be reached: the messages go back to the queue untouched
                logger.warning("Message provider %s unavailable; messages left queued", provider.name, exc_info=True)
                _finish([out.message for out in ready], timezone.now())
                run.unavailable = True
                return run
            try:
                _send(provider, ready, run)
            finally:
                provider.__exit__(None, None, None)
    return run


def _screen(messages: list[Message], now: datetime, run: DeliverRun) -> list[Outgoing]:
    """The send-time checks: consent withdrawn or processing restricted since queueing stops the message; quiet
    hours defer it; then render it for the customer as they are now."""
    ids = [m.customer_id for m in messages]
    restricted = restricted_ids(ids)
    held: dict[str, set[int]] = {}
    for purpose in {m.purpose for m in messages}:
        held[purpose] = consent_holds([m.customer_id for m in messages if m.purpose == purpose], purpose)
    channel = messages[0].channel
    found = addresses(channel, ids)
    blocked = _suppressed_keys(channel, [key for _value, key in found.values()])
    suppressed: dict[str, list[Message]] = defaultdict(list)
    deferred: dict[datetime, list[Message]] = defaultdict(list)
    keep: list[Message] = []
    for m in messages:
        if m.customer_id in restricted:
            suppressed[SuppressionReason.RESTRICTED].append(m)
        elif m.customer_id not in held[m.purpose]:
            suppressed[SuppressionReason.CONSENT].append(m)
        elif m.customer_id not in found:
            suppressed[SuppressionReason.NO_ADDRESS].append(m)
        elif found[m.customer_id][1] in blocked:
            suppressed[SuppressionReason.SUPPRESSED_ADDRESS].append(m)
        elif m.template_id is None:
            suppressed[SuppressionReason.NO_TEMPLATE].append(m)
        elif until := quiet_until(now, m.purpose):
            deferred[until].append(m)
        else:
            keep.append(m)
    for reason, group in suppressed.items():
        _finish(group, now, status=MessageStatus.SUPPRESSED, reason=reason)
        run.suppressed += len(group)
    for until, group in deferred.items():
        _finish(group, now, send_after=until)
        run.deferred += len(group)
    contexts = customer_contexts({m.customer_id for m in keep})
    wanting = [m.customer_id for m in keep if _uses_recommendations(m.template)]
    recommended = _recommendations(wanting) if wanting else {}
    ready = []
    failed = []
    for m in keep:
        try:
            rendered = template_render(
                m.template, contexts.get(m.customer_id, {}), m.context, recommendations=recommended.get(m.customer_id)
            )
        except Exception as error:  # a template that cannot render for this customer fails this message only
            m.error = f"{type(error).__name__}: {error}"[:1000]
            failed.append(m)
            continue
        address, key = found[m.customer_id]
        ready.append(Outgoing(message=m, address=address, address_key=key, rendered=rendered, template=m.template))
    for m in failed:
        Message.objects.filter(pk=m.pk).update(
            status=MessageStatus.FAILED, status_at=now, error=m.error, claimed_by="", claimed_until=None
        )
        run.failed += 1
    return ready


class _Settled:
    """Outcomes waiting for the next commit, written as one UPDATE per distinct outcome."""

    def __init__(self) -> None:
        self.pending: dict[tuple, list[int]] = defaultdict(list)

    def add(self, pk: int, values: dict) -> None:
        self.pending[tuple(sorted(values.items()))].append(pk)

    def flush(self) -> None:
        for values, pks in self.pending.items():
            Message.objects.filter(pk__in=pks).update(claimed_by="", claimed_until=None, **dict(values))
        self.pending.clear()


def _mark_sending(window: list[Outgoing], message_ids: Mapping[int, str], provider_name: str) -> None:
    """One UPDATE for the window: its messages `sending`, each with its provider id and the address it went to.
    Written as SQL because Django compiles a Case/When for each row at ~0.2 ms, more than the whole UPDATE costs."""
    now = timezone.now()
    address_keys = {out.message.pk: out.address_key for out in window}
    pks = list(message_ids)
    q = connection.ops.quote_name
    each = " ".join(["WHEN %s THEN %s"] * len(pks))
    sql = (
        f"UPDATE {q(Message._meta.db_table)} SET {q('status')} = %s, {q('sent_at')} = %s, {q('status_at')} = %s, "
        f"{q('claimed_until')} = %s, {q('attempts')} = {q('attempts')} + 1, {q('provider')} = %s, "
        f"{q('provider_message_id')} = CASE {q('id')} {each} END, {q('address_key')} = CASE {q('id')} {each} END "
        f"WHERE {q('id')} IN ({', '.join(['%s'] * len(pks))})"
    )
    at = connection.ops.adapt_datetimefield_value(now)
    lease = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=settings.CIM_MESSAGE_LEASE_SECONDS))
    params = [MessageStatus.SENDING.value, at, at, lease, provider_name]
    params += [value for pk in pks for value in (pk, message_ids[pk][:200])]
    params += [value for pk in pks for value in (pk, address_keys[pk])]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *pks])


def _send(provider, ready: list[Outgoing], run: DeliverRun) -> None:
    """Hand `ready` to `provider` a window at a time (see messages_deliver): one commit marks a window `sending`,
    and settles the previous window's outcomes."""
    settled = _Settled()
    for start in range(0, len(ready), provider.window):
        window = ready[start : start + provider.window]
        handed: dict[int, str] = {}  # the window's messages committed as handed over, with their provider ids

        def commit(message_ids: Mapping[int, str], *, window=window, handed=handed) -> None:
            with transaction.atomic():
                settled.flush()
                _mark_sending(window, message_ids, provider.name)
            handed.update(message_ids)

        try:
            outcomes = provider.send_window(window, commit)
        except Exception as error:  # the commit itself, or a provider's bug: what was handed over is in doubt
            outcomes = [error] * len(window)
        now = timezone.now()
        broken = False
        for out, outcome in zip(window, outcomes, strict=False):
            m = out.message
            if isinstance(outcome, str):
                run.sent += 1
                values = {"status": MessageStatus.SENT, "status_at": now}
                if outcome and outcome != handed.get(m.pk):
                    values["provider_message_id"] = outcome[:200]
                settled.add(m.pk, values)
            elif isinstance(outcome, NotDelivered):
                attempts = m.attempts + 1
                values = {"status_at": now, "error": str(outcome)[:1000], "attempts": attempts}
                if outcome.retry and attempts < settings.CIM_MESSAGE_MAX_ATTEMPTS:
                    values.update(status=MessageStatus.QUEUED, send_after=now + _backoff(attempts), sent_at=None)
                    run.retried += 1
                else:
                    values.update(status=MessageStatus.FAILED)
                    run.failed += 1
                settled.add(m.pk, values)
            else:
                broken = True
                if m.pk in handed:  # handed over, no answer: it may have arrived; never sent again blindly
                    settled.add(m.pk, {"status": MessageStatus.REVIEW, "status_at": now, "error": repr(outcome)[:1000]})
                    run.review += 1
                else:
                    retry = now + _backoff(1)
                    settled.add(m.pk, {"status_at": now, "error": repr(outcome)[:1000], "send_after": retry})
                    run.retried += 1
        if broken or len(outcomes) < len(window):
            # The provider's connection is gone: the rest of the batch goes back to the queue, untouched.
            with transaction.atomic():
                settled.flush()
                _finish([out.message for out in ready[start + len(outcomes) :]], now)
            logger.warning("Message provider %s failed; batch returned to the queue", provider.name)
            return
    with transaction.atomic():
        settled.flush()
