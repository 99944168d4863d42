"""Sending webhook deliveries: signed per Standard Webhooks, many at once, retried with backoff (docs/webhooks.md).

One loop per worker job. The main thread claims due deliveries (a lease: `next_attempt_at` moved ahead, so a sender
that dies gives them back when it runs out) and writes the outcomes; one asyncio loop in a thread of its own only
does HTTP, with aiohttp over one pool of keep-alive connections (threads with a blocking client spent more time
switching than sending: about half the rate). Fresh deliveries are claimed before retries, retries keep a share of
the slots so they are not starved either, and no endpoint holds more than `per_endpoint` requests in flight: a slow
or failing endpoint can never take the slots fresh events to healthy endpoints need. Delivery is at least once: a
sender killed after the receiver answered but before the outcome was written sends again, with the same
`webhook-id`.
"""

import asyncio
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from standardwebhooks import Webhook

from cim.accounts.models import User
from cim.accounts.roles import Perm, has_perm
from cim.activities.models import Notification
from cim.audit.services import audit_record
from cim.automation.models import WebhookDelivery, WebhookEndpoint
from cim.automation.webhook_selectors import TEST_EVENT
from cim.automation.webhooks import envelope, message_id, signing_secrets, subscriptions_changed
from cim.customers.services import _require
from cim.service.conf import site_url

logger = logging.getLogger(__name__)

# The wait after each failed attempt (the first is sent at once): 8 attempts over about a day and a half.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=8),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LOG_ENTRIES = 10
# An endpoint's deliveries a sender claims ahead of sending them, in multiples of its share of the slots.
CLAIM_AHEAD = 8
BODY_CHARS = 200


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def backoff(attempts: int, *, rng: Callable[[], float] = random.random) -> timedelta:
    """The wait after `attempts` failed attempts, with ±20 % jitter so retries of an outage do not come in step."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return base * (0.8 + 0.4 * rng())


def body_of(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), cls=DjangoJSONEncoder)


def sign_headers(*, message_id: str, body: str, signers: list[Webhook], at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers; one signature per secret, space separated (a rotation's grace period)."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signer.sign(message_id, at, body) for signer in signers),
        "content-type": "application/json",
        "user-agent": "CIM-Webhooks/1",
    }


@dataclass
class Outgoing:
    id: int
    endpoint_id: int
    url: str
    message_id: str
    body: str
    signers: list[Webhook]
    attempts: int
    log: list


@dataclass
class Outcome:
    at: datetime
    code: int | None
    ms: int
    error: str = ""
    body: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


async def post(session: aiohttp.ClientSession, item: Outgoing, clock: Callable[[], datetime] = timezone.now) -> Outcome:
    """One attempt, on the HTTP loop: no database."""
    headers = sign_headers(message_id=item.message_id, body=item.body, signers=item.signers)
    started = time.perf_counter()
    try:
        async with session.post(item.url, data=item.body.encode(), headers=headers, allow_redirects=False) as response:
            text = (await response.content.read(BODY_CHARS)).decode("utf-8", "replace")
            code = response.status
    except TimeoutError:
        return Outcome(clock(), None, _ms(started), "timeout")
    except aiohttp.ClientError as error:
        return Outcome(clock(), None, _ms(started), f"{type(error).__name__}: {error}"[:300])
    error = "" if 200 <= code < 300 else f"HTTP {code}"
    return Outcome(clock(), code, _ms(started), error, text)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


class HttpLoop:
    """An asyncio loop in a thread of its own with one aiohttp session: `submit` hands it a request from any thread
    and returns a concurrent Future. At most `concurrency` connections, kept alive between requests."""

    def __init__(self, *, concurrency: int, timeout: float):
        self.concurrency, self.timeout = concurrency, timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="webhook-http", daemon=True)

    def __enter__(self) -> "HttpLoop":
        self.thread.start()
        self.session = self.call(self._open())
        return self

    def __exit__(self, *exc) -> None:
        self.call(self.session.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    async def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))

    def submit(self, coroutine: Coroutine) -> Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine):
        return self.submit(coroutine).result()


@dataclass
class SendRun:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)


class Sender:
    """The claim → send → record loop of one worker job."""

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        per_endpoint: int | None = None,
        timeout: float | None = None,
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = timezone.now,
        rng: Callable[[], float] = random.random,
    ):
        self.concurrency = int(concurrency or _setting("CIM_WEBHOOK_CONCURRENCY", 64))
        self.per_endpoint = int(per_endpoint or _setting("CIM_WEBHOOK_PER_ENDPOINT", 16))
        self.timeout = timeout or _setting("CIM_WEBHOOK_TIMEOUT_SECONDS", 10)
        self.lease, self.clock, self.rng = lease, clock, rng
        self.in_flight: dict[Future, Outgoing] = {}
        self.per: Counter[int] = Counter()  # in flight, per endpoint
        # Claimed and waiting for a slot, per endpoint: claiming a few rounds ahead keeps the claim queries few.
        self.queued: dict[int, deque[Outgoing]] = defaultdict(deque)
        self.done: list[tuple[Outgoing, Outcome]] = []
        self.answers: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self.run = SendRun()
        self._endpoints: dict[int, tuple[str, list[Webhook]]] = {}

    @property
    def ahead(self) -> int:
        """How many deliveries of one endpoint this sender may hold, in flight or waiting."""
        return self.per_endpoint * CLAIM_AHEAD

    def held(self) -> Counter[int]:
        return self.per + Counter({pk: len(backlog) for pk, backlog in self.queued.items() if backlog})

    # -- claiming

    def _endpoint(self, endpoint_id: int) -> tuple[str, list[Webhook]]:
        if endpoint_id not in self._endpoints:
            endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
            signers = [Webhook(secret) for secret in signing_secrets(endpoint, now=self.clock())]
            self._endpoints[endpoint_id] = (endpoint.url, signers)
        return self._endpoints[endpoint_id]

    def claim(self, limit: int) -> list[Outgoing]:
        """Up to `limit` due deliveries, fresh first, none beyond what an endpoint may hold (`ahead`)."""
        now = self.clock()
        held = self.held()
        full = [pk for pk, n in held.items() if n >= self.ahead]
        due = (
            WebhookDelivery.objects.filter(
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED],
                next_attempt_at__lte=now,
                endpoint__is_active=True,
            )
            .exclude(endpoint_id__in=full)
            .order_by("next_attempt_at", "id")
        )
        with transaction.atomic():
            fresh = list(
                due.filter(attempts=0)
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", "endpoint_id")[:limit]
            )
            # Retries always get a quarter of the slots, fresh events the rest.
            retry_limit = max(limit - len(fresh), limit // 4)
            retries = list(
                due.filter(attempts__gt=0)
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", "endpoint_id")[:retry_limit]
            )
            taken, load = [], held
            for pk, endpoint_id in fresh + retries:
                if load[endpoint_id] < self.ahead:
                    load[endpoint_id] += 1
                    taken.append(pk)
            if not taken:
                return []
            WebhookDelivery.objects.filter(pk__in=taken).update(next_attempt_at=now + self.lease)
        rows = WebhookDelivery.objects.filter(pk__in=taken).values_list(
            "pk", "endpoint_id", "message_id", "payload", "attempts", "log"
        )
        items, erased = [], []
        for pk, endpoint_id, msg_id, payload, attempts, log in rows:
            if not payload:
                erased.append(pk)  # the customer was erased meanwhile: nothing left to send
                continue
            url, signers = self._endpoint(endpoint_id)
            items.append(Outgoing(pk, endpoint_id, url, msg_id, body_of(payload), signers, attempts, log))
        if erased:
            WebhookDelivery.objects.filter(pk__in=erased).update(
                status=WebhookDelivery.Status.DEAD, last_error="payload erased"
            )
        return items

    # -- recording

    def record(self) -> None:
        """Write the outcomes gathered so far, update each endpoint's failure streak and disable the hopeless."""
        if not self.done:
            return
        done, self.done = self.done, []
        now = self.clock()
        rows, streaks = [], {}
        for item, outcome in done:
            attempts = item.attempts + 1
            entry = {"at": outcome.at.isoformat(), "code": outcome.code, "ms": outcome.ms, "error": outcome.error}
            if outcome.body:
                entry["body"] = outcome.body
            if outcome.ok:
                status, next_at = WebhookDelivery.Status.SUCCEEDED, outcome.at
                self.run.succeeded += 1
            elif attempts >= MAX_ATTEMPTS:
                status, next_at = WebhookDelivery.Status.DEAD, outcome.at
                self.run.failed += 1
            else:
                status, next_at = WebhookDelivery.Status.FAILED, outcome.at + backoff(attempts, rng=self.rng)
                self.run.failed += 1
            rows.append(
                WebhookDelivery(
                    pk=item.id,
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    last_attempt_at=outcome.at,
                    last_status_code=outcome.code,
                    last_error=outcome.error[:300],
                    response_ms=outcome.ms,
                    log=[*item.log, entry][-LOG_ENTRIES:],
                )
            )
            # Per endpoint, in the order the answers came: a success ends the streak.
            ok_seen, failures, first_failure = streaks.get(item.endpoint_id, (False, 0, None))
            if outcome.ok:
                streaks[item.endpoint_id] = (True, 0, None)
            else:
                streaks[item.endpoint_id] = (ok_seen, failures + 1, first_failure or outcome.at)
        with transaction.atomic():
            _write(rows)
            for endpoint_id, (ok_seen, failures, first_failure) in streaks.items():
                endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
                if ok_seen:
                    endpoints.update(failure_count=failures, failing_since=first_failure)
                elif failures:
                    endpoints.filter(failing_since__isnull=True).update(failing_since=first_failure)
                    endpoints.update(failure_count=F("failure_count") + failures)
            self.run.disabled += endpoints_disable_failing(now=now, ids=list(streaks))
        self.run.sent += len(done)

    # -- the loop

    def _start(self, http: HttpLoop) -> None:
        """Hand waiting deliveries to free slots, one endpoint after another, none past its share in flight."""
        while len(self.in_flight) < self.concurrency:
            started = False
            for endpoint_id, backlog in self.queued.items():
                if backlog and self.per[endpoint_id] < self.per_endpoint and len(self.in_flight) < self.concurrency:
                    item = backlog.popleft()
                    self.per[endpoint_id] += 1
                    future = http.submit(post(http.session, item, self.clock))
                    self.in_flight[future] = item
                    future.add_done_callback(self.answers.put)
                    started = True
            if not started:
                return

    def send(self, *, seconds: float = 50.0) -> SendRun:
        """Send until nothing is due (or `seconds` have passed and what is in flight has come back)."""
        deadline = time.monotonic() + seconds
        last_flush, idle_until, claimed = time.monotonic(), 0.0, []
        with HttpLoop(concurrency=self.concurrency, timeout=self.timeout) as http:
            while True:
                now = time.monotonic()
                waiting = sum(len(backlog) for backlog in self.queued.values())
                # Claim up to four rounds of work ahead; at once when the sender has nothing in hand.
                room = 4 * self.concurrency - waiting - len(self.in_flight)
                if room > 0 and now < deadline and (now >= idle_until or (not waiting and not self.in_flight)):
                    claimed = self.claim(room)
                    for item in claimed:
                        self.queued[item.endpoint_id].append(item)
                    # At most 20 claims a second while there is work in hand; 5 while nothing is due.
                    idle_until = now + (0.05 if claimed else 0.2)
                self._start(http)
                if not self.in_flight:
                    if now >= deadline or not claimed:
                        break  # out of time, or nothing due and nothing on its way: done
                    continue
                # Answers arrive on a queue: waiting on every future in flight each round costs more.
                finished: list[Future] = []
                try:
                    finished.append(self.answers.get(timeout=0.05))
                    while True:
                        finished.append(self.answers.get_nowait())
                except queue.Empty:
                    pass
                for future in finished:
                    item = self.in_flight.pop(future)
                    self.per[item.endpoint_id] -= 1
                    self.done.append((item, future.result()))
                if len(self.done) >= 200 or time.monotonic() - last_flush > 0.25:
                    self.record()
                    last_flush = time.monotonic()
        self.record()
        return self.run


def webhook_test_send(*, endpoint: WebhookEndpoint, actor) -> WebhookDelivery:
    """Send a `webhook.test` message to `endpoint` now and wait for the answer (the page's and CLI's test button).
    It is a delivery like any other: logged, and retried by the worker if it failed."""
    _require(actor, Perm.WEBHOOK_MANAGE)
    key = f"test:{uuid.uuid4().hex}"
    sender = Sender(concurrency=1, timeout=min(_setting("CIM_WEBHOOK_TIMEOUT_SECONDS", 10), 10))
    now = sender.clock()
    with translation.override(settings.LANGUAGE_CODE):
        data = {"message": _("A test message from CIM."), "endpoint": endpoint.pk}
    with transaction.atomic():
        # Leased to this call from the start, so the worker does not send it meanwhile.
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            key=key,
            message_id=message_id(endpoint.pk, key),
            event_type=TEST_EVENT,
            payload=envelope(event_type=TEST_EVENT, occurred_at=now, data=data),
            next_attempt_at=now + sender.lease,
        )
        audit_record(actor=actor, action="webhook_endpoint.test", target=endpoint, fields=["url"])
    url, signers = sender._endpoint(endpoint.pk)
    item = Outgoing(delivery.pk, endpoint.pk, url, delivery.message_id, body_of(delivery.payload), signers, 0, [])
    with HttpLoop(concurrency=1, timeout=sender.timeout) as http:
        sender.done.append((item, http.call(post(http.session, item, sender.clock))))
    sender.record()
    delivery.refresh_from_db()
    return delivery


OUTCOME_FIELDS = (
    "status",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "response_ms",
    "log",
)


def _write(rows: list[WebhookDelivery]) -> None:
    """The outcomes, one prepared UPDATE run for every row: `bulk_update`'s CASE per field and row cost more than
    the sending itself (35 of 61 s in a profile at 1,350 deliveries)."""
    meta, quote = WebhookDelivery._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in OUTCOME_FIELDS]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields] + [row.pk] for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def deliveries_send(**options) -> SendRun:
    """Send what is due (the worker's job); keyword arguments go to `Sender` and `Sender.send`."""
    seconds = options.pop("seconds", 50.0)
    return Sender(**options).send(seconds=seconds)


# --- Disabling endpoints that keep failing ------------------------------------------------------------------------


def disable_after_failures() -> int:
    return int(_setting("CIM_WEBHOOK_DISABLE_AFTER_FAILURES", 50))


def disable_after() -> timedelta:
    return timedelta(hours=_setting("CIM_WEBHOOK_DISABLE_AFTER_HOURS", 24))


def endpoints_disable_failing(*, now: datetime, ids: list[int] | None = None) -> list[int]:
    """Switch off active endpoints that failed N times in a row or have been failing for a day; tell the
    administrators (a notification and an email). Their undelivered deliveries wait for the endpoint to return."""
    endpoints = WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(failure_count__gte=disable_after_failures()) | Q(failing_since__lte=now - disable_after())
    )
    if ids is not None:
        endpoints = endpoints.filter(pk__in=ids)
    disabled = []
    for endpoint in endpoints.select_for_update():
        with translation.override(settings.LANGUAGE_CODE):
            reason = _("%(n)s failed attempts in a row since %(since)s.") % {
                "n": endpoint.failure_count,
                "since": timezone.localtime(endpoint.failing_since or now).strftime("%Y-%m-%d %H:%M"),
            }
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, disabled_at=now, disabled_reason=reason)
        audit_record(actor=None, action="webhook_endpoint.disable", target=endpoint, fields=["is_active"], note=reason)
        _notify(endpoint, reason)
        disabled.append(endpoint.pk)
    if disabled:
        subscriptions_changed()
    return disabled


def _notify(endpoint: WebhookEndpoint, reason: str) -> None:
    admins = [user for user in User.objects.filter(is_active=True) if has_perm(user, Perm.WEBHOOK_MANAGE)]
    url = reverse("automation:webhook_detail", kwargs={"pk": endpoint.pk})
    with translation.override(settings.LANGUAGE_CODE):
        title = _("Webhook endpoint %(url)s was disabled after repeated failures") % {"url": endpoint.url[:120]}
        fix = _("Fix the receiver, then switch the endpoint on again: %(url)s") % {"url": site_url() + url}
    Notification.objects.bulk_create(Notification(user=user, title=title[:200], url=url) for user in admins)
    recipients = sorted({user.email for user in admins if user.email})

    def email() -> None:
        try:
            send_mail(title, "\n\n".join([title, reason, fix]), None, recipients)
        except Exception:
            logger.exception("webhooks: the endpoint-disabled email could not be sent")

    if recipients:
        transaction.on_commit(email)
