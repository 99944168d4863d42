"""The outbox: every change that rules or webhooks react to leaves exactly one event, handed on exactly once."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction

from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.orders import order_create, order_refund
from cim.automation import events as outbox
from cim.automation.events import CATALOGUE, event_consumer, event_publish, events_dispatch, events_prune
from cim.automation.models import Event
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update, customers_tag
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record
from cim.quality.merge import customer_merge, customer_unmerge
from cim.segments.models import Segment
from cim.segments.services import segment_create, segment_members_add, segment_members_remove, segment_refresh
from cim.service.services import ticket_create, ticket_transition

FEMALE = {"match": "all", "rules": [{"field": "gender", "operator": "eq", "value": "female"}]}


@pytest.fixture
def taken(monkeypatch):
    """A consumer that wants every event and keeps what it is handed."""
    monkeypatch.setattr(outbox, "CONSUMERS", {})
    batches: list[list[tuple[str, int | None, dict]]] = []
    event_consumer("test")(lambda events: batches.append([(e.name, e.customer_id, e.data) for e in events]))
    return batches


def published(name: str | None = None) -> list[tuple[str, int | None, dict]]:
    events = Event.objects.order_by("id")
    if name:
        events = events.filter(name=name)
    return [(e.name, e.customer_id, e.data) for e in events]


def test_nothing_is_recorded_while_nobody_listens(admin_user, monkeypatch):
    monkeypatch.setattr(outbox, "CONSUMERS", {})
    make_customer(admin_user, display_name="王芳")
    assert not Event.objects.exists()


def test_a_consumer_can_decline_events_it_has_no_use_for(admin_user, monkeypatch):
    monkeypatch.setattr(outbox, "CONSUMERS", {})
    event_consumer("orders only", wants=lambda name, data: name.startswith("order."))(lambda events: None)
    make_customer(admin_user, display_name="王芳")
    assert not Event.objects.exists()


def test_customer_changes_are_published_by_name(admin_user, taken):
    fang = make_customer(admin_user, display_name="王芳", tags=["VIP"])
    assert published() == [
        ("customer.created", fang.pk, {"channel": "create"}),
        ("customer.tag_added", fang.pk, {"tag": "VIP"}),
    ]
    Event.objects.all().delete()
    customer_update(
        customer=fang,
        data=CustomerInput(lifecycle_stage="loyal", tags=["老客户"], job_title="经理"),
        actor=admin_user,
    )
    assert published("customer.updated") == [
        ("customer.updated", fang.pk, {"fields": ["job_title", "lifecycle_stage", "tags"]})
    ]
    assert published("customer.stage_changed") == [
        ("customer.stage_changed", fang.pk, {"from": "potential", "to": "loyal"})
    ]
    assert {e[2]["tag"] for e in published() if e[0] in ("customer.tag_added", "customer.tag_removed")} == {
        "老客户",
        "VIP",
    }
    assert published("customer.tag_removed") == [("customer.tag_removed", fang.pk, {"tag": "VIP"})]


def test_an_unchanged_save_publishes_nothing(admin_user, taken):
    fang = make_customer(admin_user, display_name="王芳", job_title="经理")
    Event.objects.all().delete()
    customer_update(customer=fang, data=CustomerInput(job_title="经理"), actor=admin_user)
    assert not Event.objects.exists()


def test_bulk_tagging_publishes_one_event_per_customer_changed(admin_user, taken):
    a, b = make_customer(admin_user, display_name="甲"), make_customer(admin_user, display_name="乙", tags=["VIP"])
    Event.objects.all().delete()
    customers_tag(customer_ids=[a.pk, b.pk], add=["VIP"], actor=admin_user)
    assert published() == [("customer.tag_added", a.pk, {"tag": "VIP"})]
    customers_tag(customer_ids=[a.pk, b.pk], remove=["VIP"], actor=admin_user)
    assert sorted(published("customer.tag_removed")) == [
        ("customer.tag_removed", a.pk, {"tag": "VIP"}),
        ("customer.tag_removed", b.pk, {"tag": "VIP"}),
    ]


def test_a_rolled_back_change_leaves_no_event(admin_user, taken):
    with pytest.raises(RuntimeError), transaction.atomic():
        make_customer(admin_user, display_name="王芳")
        raise RuntimeError
    assert not Event.objects.exists()


def test_segment_joins_and_leaves_name_each_customer(admin_user, taken):
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    lei = make_customer(admin_user, display_name="李雷", gender="male")
    segment = segment_create(actor=admin_user, name="女性客户", rules=FEMALE)
    assert published("segment.entered") == [("segment.entered", fang.pk, {"segment": segment.pk})]
    Event.objects.all().delete()
    customer_update(customer=fang, data=CustomerInput(gender="male"), actor=admin_user)
    customer_update(customer=lei, data=CustomerInput(gender="female"), actor=admin_user)
    segment_refresh(segment=segment)
    assert published("segment.left") == [("segment.left", fang.pk, {"segment": segment.pk})]
    assert published("segment.entered") == [("segment.entered", lei.pk, {"segment": segment.pk})]


def test_segment_refresh_counts_without_ids_when_nobody_listens(admin_user, monkeypatch):
    monkeypatch.setattr(outbox, "CONSUMERS", {})
    make_customer(admin_user, display_name="王芳", gender="female")
    segment = segment_create(actor=admin_user, name="女性客户", rules=FEMALE)
    assert segment.size == 1 and not Event.objects.exists()


def test_static_list_members_join_and_leave(admin_user, taken):
    fang = make_customer(admin_user, display_name="王芳")
    vip = segment_create(actor=admin_user, name="名单", kind=Segment.Kind.STATIC)
    segment_members_add(segment=vip, customer_ids=[fang.pk, fang.pk], actor=admin_user)
    segment_members_remove(segment=vip, customer_ids=[fang.pk], actor=admin_user)
    assert published()[-2:] == [
        ("segment.entered", fang.pk, {"segment": vip.pk}),
        ("segment.left", fang.pk, {"segment": vip.pk}),
    ]


def test_orders_tickets_consent_and_merges_are_published(admin_user, taken):
    fang = make_customer(admin_user, display_name="王芳", phones=[{"number": "13800138000"}])
    twin = make_customer(admin_user, display_name="王芳", phones=[{"number": "13800138000"}])
    Event.objects.all().delete()
    order = order_create(
        customer=fang,
        data=OrderInput(status="paid", lines=[{"name": "茶", "quantity": 2, "unit_price": "50"}]),
        actor=admin_user,
    )
    order_refund(order=order, data=RefundInput(amount=Decimal("30")), actor=admin_user)
    ticket = ticket_create(customer=fang, subject="坏了", channel="phone", actor=admin_user)
    ticket_transition(ticket=ticket, status="resolved", resolution_code="fixed", actor=admin_user)
    consent_record(customer=fang, purpose="marketing", text="同意", text_version="1", granted=False, actor=None)
    record = customer_merge(survivor=fang, duplicates=[twin], actor=admin_user)
    customer_unmerge(record=record, actor=admin_user)
    assert [e for e in published() if e[0] != "customer.updated"] == [
        ("order.placed", fang.pk, {"order": order.pk, "total": "100.00"}),
        ("order.refunded", fang.pk, {"order": order.pk, "amount": "30"}),
        ("ticket.created", fang.pk, {"ticket": ticket.pk}),
        ("ticket.resolved", fang.pk, {"ticket": ticket.pk}),
        ("consent.changed", fang.pk, {"purpose": "marketing", "granted": False}),
        ("customer.merged", fang.pk, {"merged": [twin.pk], "merge": record.pk}),
        ("customer.unmerged", fang.pk, {"restored": [twin.pk]}),
    ]


def test_dispatch_hands_each_event_on_once_in_order(admin_user, taken):
    for name in ("甲", "乙", "丙"):
        make_customer(admin_user, display_name=name)
    run = events_dispatch(batch_size=2)
    assert (run.events, run.batches) == (3, 2)
    assert [len(batch) for batch in taken] == [2, 1]
    assert [name for batch in taken for name, _id, _data in batch] == ["customer.created"] * 3
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()
    assert events_dispatch().events == 0 and len(taken) == 2


def test_a_failing_consumer_leaves_the_batch_for_the_next_run(admin_user, taken):
    make_customer(admin_user, display_name="王芳")

    def broken(events):
        raise ConnectionError

    event_consumer("broken")(broken)
    with pytest.raises(ConnectionError):
        events_dispatch()
    assert Event.objects.filter(dispatched_at__isnull=True).count() == 1
    outbox.CONSUMERS.pop("broken")
    assert events_dispatch().events == 1


def test_publishing_queues_one_dispatch_per_transaction(admin_user, taken, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for name in ("甲", "乙"):
            make_customer(admin_user, display_name=name, tags=["VIP"])
    assert [c.__name__ for c in callbacks].count("_queue_dispatch") == 1


def test_unknown_event_names_are_refused(taken):
    with pytest.raises(ValueError):
        event_publish("customer.exploded", customer_id=1)


def test_prune_forgets_only_dispatched_events(admin_user, taken):
    make_customer(admin_user, display_name="王芳")
    events_dispatch()
    make_customer(admin_user, display_name="李雷")
    Event.objects.update(occurred_at="2020-01-01T00:00Z")
    Event.objects.filter(dispatched_at__isnull=False).update(dispatched_at="2020-01-01T00:00Z")
    assert events_prune() == 1
    assert published() == [("customer.created", Event.objects.get().customer_id, {"channel": "create"})]


def test_every_catalogued_event_documents_its_data():
    assert all(event.description and event.version >= 1 for event in CATALOGUE.values())


def test_the_docs_list_every_event():
    docs = (Path(__file__).parents[4] / "docs" / "events.md").read_text()
    assert all(f"| `{name}` |" in docs for name in CATALOGUE)
