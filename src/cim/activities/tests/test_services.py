"""events_ingest: identify creates and updates customers, anonymous events join them, messageIds make it idempotent."""

from datetime import UTC, datetime

import pytest

from cim.activities.models import AnonymousLink, BehaviourEvent
from cim.activities.schemas import TrackingMessage
from cim.activities.selectors import customer_activity
from cim.activities.services import SEGMENT_SYSTEM, events_ingest
from cim.activities.timeline import timeline_page
from cim.audit.models import AuditEvent
from cim.customers.configuration import custom_field_create
from cim.customers.models import Customer, ExternalId
from cim.customers.tests.factories import make_customer
from cim.ingest.sources import event_source_create

pytestmark = pytest.mark.django_db


def msg(type_: str, **fields) -> TrackingMessage:
    return TrackingMessage.model_validate({"type": type_, **fields})


def ingest(source, *messages):
    return events_ingest(source=source, messages=list(messages))


TRAITS = {
    "name": "张三",
    "email": "Zhang.San@Example.com",
    "phone": "138 1234 5678",
    "company": {"name": "华为技术有限公司"},
    "title": "采购经理",
    "birthday": "1990-05-01T00:00:00.000Z",
    "gender": "男",
    "address": {"state": "广东省", "city": "深圳市", "street": "坂田街道", "postalCode": "518129", "country": "China"},
    "plan": "enterprise",
}


def test_identify_creates_a_customer_from_traits(source):
    result = ingest(source, msg("identify", userId="u-1", traits=TRAITS, messageId="m1"))

    customer = Customer.objects.get()
    assert (result.stored, result.customers_created, result.rejected_traits) == (1, 1, 0)
    assert (customer.display_name, customer.company, customer.job_title) == ("张三", "华为技术有限公司", "采购经理")
    assert (str(customer.birthday), customer.gender, customer.source_channel) == ("1990-05-01", "male", "website")
    assert [(e.address, e.raw) for e in customer.emails.all()] == [("zhang.san@example.com", "Zhang.San@Example.com")]
    assert [(p.number, p.raw) for p in customer.phones.all()] == [("+8613812345678", "138 1234 5678")]
    address = customer.addresses.get()
    assert (address.country, address.province, address.city, address.postal_code) == (
        "CN",
        "广东省",
        "深圳市",
        "518129",
    )
    assert ExternalId.objects.get(system=SEGMENT_SYSTEM, value="u-1").customer == customer
    event = BehaviourEvent.objects.get()
    assert (event.customer, event.type, event.channel, event.properties["plan"]) == (
        customer,
        "identify",
        "website",
        "enterprise",
    )
    assert AuditEvent.objects.filter(action="customer.create", target_id=str(customer.pk)).exists()


def test_sensitive_traits_reach_the_customer_but_are_not_kept_in_the_event(source):
    context = {"ip": "203.0.113.7", "traits": {"email": "z@example.com", "plan": "pro"}}
    ingest(source, msg("identify", userId="u-1", traits=TRAITS, context=context, messageId="m1"))
    ingest(source, msg("track", userId="u-1", event="Signed Up", properties={"email": "z@example.com", "plan": "pro"}))

    identify, track = BehaviourEvent.objects.order_by("id")
    assert set(identify.properties) == {"name", "company", "title", "gender", "plan"}
    assert identify.context == {"ip": "203.0.113.7", "traits": {"plan": "pro"}}
    assert track.properties == {"plan": "pro"}
    assert Customer.objects.get().emails.get().address == "zhang.san@example.com"


def test_identify_again_updates_and_keeps_contact_points(source):
    ingest(source, msg("identify", userId="u-1", traits={"name": "张三", "email": "zs@example.com"}, messageId="m1"))
    ingest(
        source,
        msg("identify", userId="u-1", traits={"title": "总监", "email": "zs@work.example.com"}, messageId="m2"),
    )

    customer = Customer.objects.get()
    assert (customer.display_name, customer.job_title) == ("张三", "总监")
    assert sorted(e.address for e in customer.emails.all()) == ["zs@example.com", "zs@work.example.com"]
    assert customer.emails.get(is_primary=True).address == "zs@example.com"
    assert AuditEvent.objects.filter(action="customer.update", target_id=str(customer.pk)).count() == 1


def test_first_and_last_name_make_the_display_name(source):
    ingest(
        source,
        msg("identify", userId="a", traits={"firstName": "三", "lastName": "张"}),
        msg("identify", userId="b", traits={"firstName": "Ada", "lastName": "Lovelace"}),
    )
    names = dict(ExternalId.objects.values_list("value", "customer__display_name"))
    assert names == {"a": "张三", "b": "Ada Lovelace"}


def test_identify_without_a_name_is_named_by_its_user_id(source):
    ingest(source, msg("identify", userId="10086"))
    assert Customer.objects.get().display_name == "10086"


def test_identify_matches_the_one_customer_with_that_email(source, admin_user):
    existing = make_customer(admin_user, display_name="李四", emails=[{"address": "li.si@example.com"}])

    result = ingest(source, msg("identify", userId="shop-7", traits={"email": " LI.SI@example.com "}))

    assert result.customers_created == 0
    assert Customer.objects.count() == 1
    assert ExternalId.objects.get(value="shop-7").customer == existing
    assert BehaviourEvent.objects.get().customer == existing


def test_identify_matches_by_phone(source, admin_user):
    existing = make_customer(admin_user, display_name="王五", phones=[{"number": "+86 139 1234 5678"}])
    ingest(source, msg("identify", anonymousId="anon-1", traits={"phone": "13912345678"}))
    assert AnonymousLink.objects.get(anonymous_id="anon-1").customer == existing


def test_an_email_two_customers_share_matches_neither(source, admin_user):
    for name in ("赵六", "赵六（重复）"):
        make_customer(admin_user, display_name=name, emails=[{"address": "zhao@example.com"}])

    ingest(source, msg("identify", userId="z", traits={"name": "赵六", "email": "zhao@example.com"}))

    assert Customer.objects.count() == 3
    assert ExternalId.objects.get(value="z").customer.emails.get().address == "zhao@example.com"


def test_anonymous_events_join_the_customer_an_identify_links(source):
    ingest(source, msg("page", anonymousId="anon-1", name="首页", messageId="p1"))
    assert BehaviourEvent.objects.get().customer is None

    ingest(source, msg("identify", anonymousId="anon-1", userId="u-1", traits={"name": "张三"}, messageId="i1"))
    ingest(source, msg("track", anonymousId="anon-1", event="Added to cart", messageId="t1"))

    customer = Customer.objects.get()
    assert set(BehaviourEvent.objects.values_list("message_id", "customer")) == {
        ("p1", customer.pk),
        ("i1", customer.pk),
        ("t1", customer.pk),
    }


def test_events_of_a_user_id_join_its_later_identify(source):
    ingest(source, msg("track", userId="u-9", event="Logged in", messageId="t1"))
    ingest(source, msg("identify", userId="u-9", traits={"name": "钱七"}, messageId="i1"))
    assert BehaviourEvent.objects.get(message_id="t1").customer == Customer.objects.get()


def test_anonymous_ids_are_per_source(source):
    app, _key = event_source_create(name="App", source_channel="app", actor=None)
    ingest(source, msg("identify", anonymousId="same-id", userId="u-1"))
    ingest(app, msg("track", anonymousId="same-id", event="Opened", messageId="t1"))
    assert BehaviourEvent.objects.get(message_id="t1").customer is None


def test_a_batch_joins_its_own_earlier_events(source):
    result = ingest(
        source,
        msg("track", anonymousId="anon-1", event="Viewed product", messageId="t1"),
        msg("identify", anonymousId="anon-1", userId="u-1", traits={"name": "张三"}, messageId="i1"),
    )
    assert result.stored == 2
    assert BehaviourEvent.objects.filter(customer__isnull=True).count() == 0


def test_message_ids_make_ingestion_idempotent(source):
    identify = msg("identify", userId="u-1", traits={"name": "张三"}, messageId="i1")
    track = msg("track", userId="u-1", event="Order completed", messageId="t1")

    first = ingest(source, identify, track, track)
    customer = Customer.objects.get()
    customer.display_name = "张三丰"
    customer.save()
    again = ingest(source, identify, track)

    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (0, 2)
    assert BehaviourEvent.objects.count() == 2
    customer.refresh_from_db()
    assert customer.display_name == "张三丰", "a repeated identify is not applied again"


def test_the_same_message_id_in_two_sources_is_two_events(source):
    app, _key = event_source_create(name="App", actor=None)
    ingest(source, msg("track", userId="u-1", event="A", messageId="same"))
    ingest(app, msg("track", userId="u-1", event="A", messageId="same"))
    assert BehaviourEvent.objects.count() == 2


def test_a_bad_trait_is_reported_and_the_others_applied(source):
    result = ingest(
        source,
        msg("identify", userId="u-1", traits={"name": "张三", "email": "not-an-email", "gender": "?", "title": "经理"}),
    )
    customer = Customer.objects.get()
    assert (customer.display_name, customer.job_title) == ("张三", "经理")
    assert not customer.emails.exists()
    assert result.rejected_traits == 2
    errors = BehaviourEvent.objects.get().trait_errors
    assert {e["field"] for e in errors} == {"traits.email", "traits.gender"}


def test_a_trait_the_customer_service_rejects_is_reported(source):
    ingest(
        source, msg("identify", userId="u-1", traits={"name": "张三", "title": "经" * 101, "birthday": "1990-13-45"})
    )
    customer = Customer.objects.get()
    assert (customer.display_name, customer.job_title, customer.birthday) == ("张三", "", None)
    errors = BehaviourEvent.objects.get().trait_errors
    assert {e["field"] for e in errors} == {"traits.title", "traits.birthday"}


def test_a_required_custom_field_keeps_identify_from_creating_a_customer(source):
    custom_field_create(key="level", label_zh="等级", label_en="Level", field_type="text", required=True, actor=None)
    result = ingest(source, msg("identify", userId="u-1", traits={"name": "张三"}))
    assert (result.stored, result.customers_created) == (1, 0)
    assert BehaviourEvent.objects.get().trait_errors[0]["field"] == "traits.custom_fields"


def test_an_anonymous_identify_that_says_nothing_makes_no_customer(source):
    ingest(source, msg("identify", anonymousId="anon-1", traits={"plan": "free"}))
    assert not Customer.objects.exists()
    assert BehaviourEvent.objects.get().customer is None


def test_first_and_last_touch_follow_the_events(source):
    campaign = {"campaign": {"source": "baidu", "medium": "cpc", "name": "618"}}
    ingest(
        source,
        msg("page", anonymousId="anon-1", timestamp="2026-06-01T08:00:00Z", context=campaign, messageId="p1"),
    )
    ingest(source, msg("identify", anonymousId="anon-1", userId="u-1", timestamp="2026-06-03T08:00:00Z"))
    ingest(source, msg("track", userId="u-1", event="Paid", timestamp="2026-06-05T08:00:00Z", messageId="t1"))

    customer = Customer.objects.get()
    first, last = customer_activity(customer=customer).touches
    assert (first.kind, first.at, first.utm_source, first.utm_medium, first.utm_campaign) == (
        "first",
        datetime(2026, 6, 1, 8, tzinfo=UTC),
        "baidu",
        "cpc",
        "618",
    )
    assert (last.kind, last.at, last.channel, last.utm_source) == (
        "last",
        datetime(2026, 6, 5, 8, tzinfo=UTC),
        "website",
        "",
    )


def test_a_late_event_that_happened_earlier_becomes_the_first_touch(source):
    ingest(source, msg("identify", userId="u-1", timestamp="2026-06-03T08:00:00Z"))
    ingest(source, msg("page", userId="u-1", timestamp="2026-06-01T08:00:00Z", context={"campaign": {"source": "wx"}}))

    first, last = customer_activity(customer=Customer.objects.get()).touches
    assert (first.at.day, first.utm_source, last.at.day) == (1, "wx", 3)


def test_channel_comes_from_the_sdk_when_the_source_has_none(db):
    source, _key = event_source_create(name="多端", actor=None)
    ingest(
        source,
        msg("track", userId="u", event="a", context={"library": {"name": "analytics.js"}}, messageId="web"),
        msg("track", userId="u", event="a", context={"library": {"name": "analytics-android"}}, messageId="app"),
        msg("track", userId="u", event="a", context={"library": {"name": "analytics-python"}}, messageId="server"),
    )
    assert dict(BehaviourEvent.objects.values_list("message_id", "channel")) == {
        "web": "website",
        "app": "app",
        "server": "api",
    }


def test_the_timeline_lists_the_latest_events_first_and_the_activity_when_last_seen(source):
    ingest(
        source,
        msg("identify", userId="u-1", timestamp="2026-01-01T00:00:00Z"),
        *(msg("track", userId="u-1", event=f"E{i}", timestamp=f"2026-01-0{i}T12:00:00Z") for i in range(2, 6)),
    )
    customer = Customer.objects.get()
    page = timeline_page(customer_id=customer.pk, kinds=["event"], limit=3)
    assert [entry.title.rsplit(" · ", 1)[-1] for entry in page.entries] == ["E5", "E4", "E3"]
    assert customer_activity(customer=customer).last_seen == datetime(2026, 1, 5, 12, tzinfo=UTC)


def test_a_batch_of_known_users_takes_a_fixed_number_of_queries(source, django_assert_max_num_queries):
    ingest(source, *(msg("identify", userId=f"u-{i}") for i in range(20)))
    tracks = [msg("track", userId=f"u-{i % 20}", event="Viewed", messageId=f"t{i}") for i in range(200)]
    with django_assert_max_num_queries(12):
        result = ingest(source, *tracks)
    assert result.stored == 200
    assert BehaviourEvent.objects.filter(type="track", customer__isnull=False).count() == 200
