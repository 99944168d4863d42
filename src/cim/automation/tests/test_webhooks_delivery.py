"""Webhooks end to end against a real receiver on loopback that verifies every signature with standardwebhooks:
subscriptions, payloads filtered by scope, retries with backoff, auto-disable, replay, rotation, erasure."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cim.accounts.roles import Role
from cim.activities.models import Notification
from cim.automation import webhooks as hooks
from cim.automation.events import CATALOGUE, event_wanted, events_dispatch
from cim.automation.models import WebhookDelivery, WebhookEndpoint
from cim.automation.tests.webhook_receiver import Receiver
from cim.automation.webhook_sender import CLAIM_AHEAD, MAX_ATTEMPTS, RETRY_DELAYS, Sender, backoff, deliveries_send
from cim.automation.webhooks import (
    CUSTOMER_FIELDS,
    deliveries_prune,
    deliveries_replay,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_secret_rotate,
    webhook_send,
)
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update
from cim.customers.tests.factories import make_customer
from cim.privacy.erasure import customer_erase
from cim.privacy.registry import NOT_PERSONAL, field_info
from cim.privacy.services import restriction_set

PHONE = "13812345678"


@pytest.fixture
def receiver():
    found = Receiver().start()
    yield found
    found.stop()


@pytest.fixture(autouse=True)
def _fresh_subscriptions():
    hooks._wanted.update(types=None)
    yield
    hooks._wanted.update(types=None)


def endpoint_for(receiver, admin_user, **data) -> WebhookEndpoint:
    values = {
        "url": receiver.url,
        "event_types": ["customer.created", "customer.updated"],
        "scope_role": "administrator",
    }
    endpoint, secret = webhook_endpoint_create(data={**values, **data}, actor=admin_user)
    receiver.secrets.append(secret)
    return endpoint


def customer_with_contacts(admin_user, **fields):
    return make_customer(
        admin_user,
        display_name="王芳",
        phones=[{"number": PHONE}],
        emails=[{"address": "wang.fang@example.com"}],
        birthday="1990-05-06",
        **fields,
    )


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now


def test_events_reach_the_receiver_signed_with_their_payload(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    fang = customer_with_contacts(admin_user, tags=["VIP"])
    customer_update(customer=fang, data=CustomerInput(job_title="经理"), actor=admin_user)
    events_dispatch()

    run = deliveries_send(seconds=5)

    assert (run.sent, run.succeeded, receiver.bad_signatures) == (2, 2, 0)
    payloads = [r.payload for r in receiver.received]
    assert sorted(p["type"] for p in payloads) == ["customer.created", "customer.updated"]
    created = next(p for p in payloads if p["type"] == "customer.created")
    assert created["version"] == CATALOGUE["customer.created"].version
    assert created["data"]["channel"] == "create"
    customer = created["data"]["customer"]
    assert (customer["number"], customer["display_name"], customer["phone"]) == (fang.number, "王芳", "+8613812345678")
    assert customer["tags"] == ["VIP"] and customer["birthday"] == "1990-05-06"
    # The webhook-id is the delivery's, the same on every attempt.
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == set(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    delivery = WebhookDelivery.objects.first()
    assert delivery.endpoint == endpoint and delivery.last_status_code == 200 and delivery.log[0]["code"] == 200


def test_only_subscribed_event_types_are_recorded(receiver, admin_user):
    assert not event_wanted("order.placed")
    endpoint = endpoint_for(receiver, admin_user, event_types=["customer.tag_added"])
    assert event_wanted("customer.tag_added") and not event_wanted("customer.created")
    make_customer(admin_user, tags=["VIP"])
    events_dispatch()
    assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == ["customer.tag_added"]

    webhook_endpoint_update(endpoint=endpoint, data={"all_events": True}, actor=admin_user)
    assert all(event_wanted(name) for name in CATALOGUE)
    webhook_endpoint_update(endpoint=endpoint, data={"is_active": False}, actor=admin_user)
    assert not event_wanted("customer.tag_added")


def test_dispatching_a_batch_twice_records_each_delivery_once(receiver, admin_user):
    endpoint_for(receiver, admin_user)
    make_customer(admin_user)
    from cim.automation.models import Event

    events = list(Event.objects.all())
    assert hooks.webhooks_take(events) == 1
    hooks.webhooks_take(events)
    assert WebhookDelivery.objects.count() == 1


def test_a_masked_field_never_leaves(receiver, admin_user, users):
    # Marketing sees every customer, contact details and birthday masked.
    endpoint_for(receiver, admin_user, scope_role=Role.MARKETING)
    customer_with_contacts(admin_user)
    events_dispatch()
    deliveries_send(seconds=5)

    [received] = receiver.received
    customer = received.payload["data"]["customer"]
    assert customer["display_name"] == "王芳"
    assert not {"phone", "email", "birthday"} & set(customer)
    assert b"5678" not in received.body and b"wang" not in received.body and b"1990" not in received.body


def test_a_user_scope_sees_only_their_customers(receiver, admin_user, users, make_user):
    sales = users[Role.SALES]
    endpoint_for(receiver, admin_user, scope_role="", scope_user=sales.username)
    mine = customer_with_contacts(admin_user, owner_id=sales.pk)
    other = make_user(Role.SALES, username="other-sales")
    make_customer(admin_user, display_name="李雷", owner_id=other.pk)
    events_dispatch()

    assert list(WebhookDelivery.objects.values_list("customer_id", flat=True)) == [mine.pk]
    # Sales see their own customers' contact details unmasked.
    assert WebhookDelivery.objects.get().payload["data"]["customer"]["phone"] == "+8613812345678"


def test_a_restricted_customer_is_named_by_number_only(receiver, admin_user):
    endpoint_for(receiver, admin_user, event_types=["customer.updated"])
    fang = customer_with_contacts(admin_user)
    customer_update(customer=fang, data=CustomerInput(job_title="经理"), actor=admin_user)
    restriction_set(customer=fang, actor=admin_user)  # before the event is dispatched
    events_dispatch()
    assert WebhookDelivery.objects.get().payload["data"]["customer"] == {"number": fang.number, "restricted": True}


def test_a_role_that_sees_only_some_customers_cannot_be_a_scope(admin_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        webhook_endpoint_create(
            data={"url": "https://example.com/h", "all_events": True, "scope_role": Role.SALES}, actor=admin_user
        )
    assert "scope_role" in error.value.message_dict


def test_every_payload_field_is_classified_by_the_pi_registry():
    for _key, model, name in CUSTOMER_FIELDS:
        assert field_info(model, name) is not None or name in NOT_PERSONAL[model], (model, name)


def test_failures_are_retried_with_backoff_and_given_up(receiver, admin_user):
    receiver.status = 500
    endpoint_for(receiver, admin_user)
    make_customer(admin_user)
    events_dispatch()
    clock = Clock()
    start = clock.now

    run = Sender(clock=clock, rng=lambda: 0.5).send(seconds=2)

    delivery = WebhookDelivery.objects.get()
    assert (run.failed, delivery.status, delivery.attempts) == (1, "failed", 1)
    assert delivery.next_attempt_at == start + RETRY_DELAYS[0]
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"

    clock.now = start + timedelta(seconds=4)  # not due yet
    assert Sender(clock=clock).send(seconds=1).sent == 0
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.now = WebhookDelivery.objects.get().next_attempt_at
        assert Sender(clock=clock, rng=lambda: 0.5).send(seconds=2).sent == 1
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert delivery.next_attempt_at == clock.now + RETRY_DELAYS[attempt - 1]
    assert delivery.status == "dead"
    assert len(delivery.log) == MAX_ATTEMPTS
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_backoff_has_jitter_within_a_fifth():
    assert backoff(1, rng=lambda: 0.0) == RETRY_DELAYS[0] * 0.8
    assert backoff(1, rng=lambda: 1.0) == RETRY_DELAYS[0] * 1.2
    assert backoff(7, rng=lambda: 0.5) == timedelta(hours=24)
    assert sum(RETRY_DELAYS, timedelta()) > timedelta(hours=24)


def test_fresh_deliveries_are_claimed_before_retries_and_retries_keep_a_share(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            key=f"k{i}",
            message_id=f"m{i}",
            event_type="customer.updated",
            payload={"n": i},
            attempts=0 if i % 2 else 3,
            next_attempt_at=now - timedelta(minutes=10 - i),
            status="pending" if i % 2 else "failed",
        )
        for i in range(10)
    ]
    WebhookDelivery.objects.bulk_create(rows)
    sender = Sender(per_endpoint=100, clock=lambda: now)
    claimed = sender.claim(4)
    assert [item.attempts for item in claimed].count(0) == 4  # fresh fill the slots...
    claimed += sender.claim(8)
    assert [item.attempts for item in claimed[4:]].count(3) >= 2  # ...but retries always get a quarter


def test_an_endpoint_never_has_more_than_its_share_in_flight(receiver, admin_user):
    receiver.delay = 0.2
    endpoint = endpoint_for(receiver, admin_user)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, key=f"k{i}", message_id=f"m{i}", event_type="x.y", payload={"n": i})
        for i in range(12)
    )
    run = Sender(concurrency=8, per_endpoint=3).send(seconds=10)
    assert run.succeeded == 12 and receiver.most_active <= 3


def test_a_sender_claims_only_a_few_rounds_ahead(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, key=f"k{i}", message_id=f"m{i}", event_type="x.y", payload={"n": i})
        for i in range(30)
    )
    sender = Sender(per_endpoint=2)
    assert len(sender.claim(30)) == sender.ahead == 2 * CLAIM_AHEAD
    # The rest stayed due: another sender may take them.
    assert WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now()).count() == 30 - sender.ahead


def test_an_endpoint_failing_again_and_again_is_disabled_and_admins_told(
    receiver, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.CIM_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    admin_user.email = "admin@example.com"
    admin_user.save()
    receiver.status = 503
    endpoint = endpoint_for(receiver, admin_user, event_types=["customer.created"])
    for name in ("甲", "乙", "丙"):
        make_customer(admin_user, display_name=name)
    events_dispatch()

    with django_capture_on_commit_callbacks(execute=True):
        run = deliveries_send(seconds=5)

    endpoint.refresh_from_db()
    assert run.disabled == [endpoint.pk]
    assert not endpoint.is_active and endpoint.disabled_at and endpoint.failure_count == 3
    assert Notification.objects.filter(user=admin_user, url__contains=f"/webhooks/{endpoint.pk}/").exists()
    assert [m.to for m in mail.outbox] == [["admin@example.com"]]
    # Nothing more is sent to it, and it takes no new events.
    assert not event_wanted("customer.created")
    assert Sender().send(seconds=1).sent == 0
    # Switched on again: the streak is forgotten and the waiting deliveries go.
    receiver.status = 200
    webhook_endpoint_update(endpoint=endpoint, data={"is_active": True}, actor=admin_user)
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.disabled_at) == (0, None)


def test_an_endpoint_failing_for_a_day_is_disabled(receiver, admin_user):
    receiver.status = 500
    endpoint = endpoint_for(receiver, admin_user)
    make_customer(admin_user)
    events_dispatch()
    clock = Clock()
    since = clock.now - timedelta(hours=25)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=1, failing_since=since)
    assert Sender(clock=clock).send(seconds=2).disabled == [endpoint.pk]


def test_a_success_ends_the_failure_streak(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=7, failing_since=timezone.now())
    make_customer(admin_user)
    events_dispatch()
    deliveries_send(seconds=2)
    endpoint.refresh_from_db()
    assert (endpoint.failure_count, endpoint.failing_since) == (0, None)


def test_replay_sends_again_with_the_same_webhook_id(receiver, admin_user):
    endpoint_for(receiver, admin_user)
    make_customer(admin_user)
    events_dispatch()
    deliveries_send(seconds=2)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="dead")

    assert deliveries_replay(actor=admin_user, since=delivery.created_at - timedelta(minutes=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    deliveries_send(seconds=2)

    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.message_id] * 2
    assert deliveries_replay(actor=admin_user) == 0  # nothing failed any more
    assert deliveries_replay(actor=admin_user, deliveries=[delivery]) == 1  # one, whatever its status


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    old = receiver.secrets.pop()
    new = webhook_secret_rotate(endpoint=endpoint, actor=admin_user)
    assert new.startswith("whsec_") and new != old
    make_customer(admin_user)
    events_dispatch()

    receiver.secrets = [old]  # a receiver not switched yet
    deliveries_send(seconds=2)
    receiver.secrets = [new]
    assert deliveries_replay(actor=admin_user, deliveries=list(WebhookDelivery.objects.all())) == 1
    deliveries_send(seconds=2)
    assert receiver.bad_signatures == 0 and len(receiver.received) == 2
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    receiver.secrets = [old]
    deliveries_replay(actor=admin_user, deliveries=list(WebhookDelivery.objects.all()))
    deliveries_send(seconds=2)
    assert receiver.bad_signatures == 1


def test_the_secret_is_stored_encrypted(admin_user):
    from django.db import connection

    endpoint, secret = webhook_endpoint_create(
        data={"url": "https://example.com/h", "all_events": True, "scope_role": "administrator"}, actor=admin_user
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM automation_webhookendpoint WHERE id = %s", [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert secret not in stored and stored.startswith("v1:")


def test_erasure_wipes_the_payloads_and_nothing_is_sent(receiver, admin_user):
    endpoint_for(receiver, admin_user)
    fang = customer_with_contacts(admin_user)
    events_dispatch()
    customer_erase(customer=fang, actor=admin_user, reason="本人要求")

    delivery = WebhookDelivery.objects.get(event_type="customer.created")
    assert delivery.payload == {}
    deliveries_send(seconds=2)
    delivery.refresh_from_db()
    assert delivery.status == "dead" and not receiver.received


def test_webhook_send_is_idempotent_on_its_key(receiver, admin_user):
    endpoint = endpoint_for(receiver, admin_user)
    fang = customer_with_contacts(admin_user)
    first = webhook_send(
        endpoint=endpoint, event_type="rule.fired", payload={"rule": 5}, key="rule:5:run:7", customer_id=fang.pk
    )
    again = webhook_send(endpoint=endpoint, event_type="rule.fired", payload={"rule": 5}, key="rule:5:run:7")
    assert first.pk == again.pk and WebhookDelivery.objects.filter(key="rule:5:run:7").count() == 1
    deliveries_send(seconds=2)
    [received] = [r for r in receiver.received if r.payload["type"] == "rule.fired"]
    assert received.payload["data"]["rule"] == 5 and received.payload["data"]["customer"]["number"] == fang.number


def test_old_deliveries_are_pruned(receiver, admin_user):
    endpoint_for(receiver, admin_user)
    make_customer(admin_user)
    events_dispatch()
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert deliveries_prune() == 1
