"""The tracking endpoints through Django's test client: Segment's wire format, auth, limits and hostile input."""

import gzip
import json

import pytest
from django.db import IntegrityError, OperationalError
from django.test import Client
from django.urls import reverse

from cim.activities.models import BehaviourEvent
from cim.activities.services import events_ingest
from cim.customers.models import Customer
from cim.ingest import tracking
from cim.ingest.models import EventSource

pytestmark = pytest.mark.django_db


def post(path: str, body, headers: dict | None = None, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False)
    return Client(HTTP_ACCEPT_LANGUAGE="en").post(
        f"/ingest/v1/{path}", data=data, content_type="application/json", **(headers or {}), **extra
    )


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


@pytest.mark.parametrize(
    ("path", "body", "kind", "name"),
    [
        ("identify", {"userId": "u-1", "traits": {"name": "张三"}}, "identify", ""),
        (
            "track",
            {"userId": "u-1", "event": "Order Completed", "properties": {"total": 99}},
            "track",
            "Order Completed",
        ),
        ("page", {"anonymousId": "a-1", "name": "Pricing", "properties": {"path": "/pricing"}}, "page", "Pricing"),
        ("screen", {"anonymousId": "a-1", "name": "Home"}, "screen", "Home"),
        ("group", {"userId": "u-1", "groupId": "org-1", "traits": {"name": "华为"}}, "group", "org-1"),
        ("alias", {"userId": "u-1", "previousId": "a-1"}, "alias", "a-1"),
    ],
)
def test_each_call_is_stored(basic_auth, path, body, kind, name):
    response = post(path, {**body, "messageId": "m-1"}, basic_auth)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    event = BehaviourEvent.objects.get()
    assert (event.type, event.name, event.message_id) == (kind, name, "m-1")


def test_analytics_js_short_paths_with_the_write_key_in_a_text_body(write_key):
    """What Analytics 2.0 sends: /t, /p… and /b, `text/plain`, writeKey in the body, extra fields of its own."""
    track = {
        "type": "track",
        "event": "Product Viewed",
        "properties": {"sku": "A-1"},
        "anonymousId": "0c3f-anon",
        "messageId": "ajs-next-1718000000000-1",
        "timestamp": "2026-06-18T10:00:00.000Z",
        "sentAt": "2026-06-18T10:00:00.100Z",
        "integrations": {},
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {"path": "/p/1", "url": "https://shop.example.com/p/1?utm_source=wx", "search": "?utm_source=wx"},
            "campaign": {"source": "wx"},
        },
        "writeKey": write_key,
    }
    client = Client()
    one = client.post("/ingest/v1/t", data=json.dumps(track), content_type="text/plain")
    batch = {"writeKey": write_key, "batch": [{**track, "messageId": "ajs-2"}], "sentAt": "2026-06-18T10:00:01Z"}
    many = client.post("/ingest/v1/b", data=json.dumps(batch), content_type="text/plain")

    assert (one.status_code, many.status_code) == (200, 200), (one.content, many.content)
    assert one["Access-Control-Allow-Origin"] == "*"
    event = BehaviourEvent.objects.get(message_id="ajs-next-1718000000000-1")
    assert (event.type, event.name, event.anonymous_id) == ("track", "Product Viewed", "0c3f-anon")
    assert BehaviourEvent.objects.count() == 2


def test_batch_stores_every_event_and_applies_the_shared_context(basic_auth):
    body = {
        "batch": [
            {"type": "identify", "userId": "u-1", "traits": {"email": "zs@example.com", "name": "张三"}},
            {"type": "track", "userId": "u-1", "event": "Signed Up", "context": {"ip": "10.0.0.1"}},
            {"type": "page", "userId": "u-1", "name": "Home"},
        ],
        "context": {"library": {"name": "analytics-python"}},
    }
    response = post("batch", body, basic_auth)
    assert response.status_code == 200, response.content
    customer = Customer.objects.get()
    assert BehaviourEvent.objects.filter(customer=customer).count() == 3
    track = BehaviourEvent.objects.get(type="track")
    assert track.context == {"library": {"name": "analytics-python"}, "ip": "10.0.0.1"}


def test_the_same_request_twice_is_stored_once(basic_auth):
    body = {"batch": [{"type": "track", "userId": "u-1", "event": "A", "messageId": "m-1"}]}
    assert post("batch", body, basic_auth).status_code == 200
    assert post("batch", body, basic_auth).status_code == 200
    assert BehaviourEvent.objects.count() == 1


def test_write_key_in_the_body(write_key):
    response = post("track", {"writeKey": write_key, "userId": "u-1", "event": "A"})
    assert response.status_code == 200
    assert BehaviourEvent.objects.count() == 1


def test_gzip_body(basic_auth):
    body = gzip.compress(json.dumps({"batch": [{"type": "track", "userId": "u", "event": "A"}]}).encode())
    response = post("batch", body, basic_auth, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert BehaviourEvent.objects.count() == 1


def test_a_timestamp_is_kept_and_a_missing_one_is_the_arrival_time(basic_auth):
    post("track", {"userId": "u", "event": "A", "timestamp": "2026-06-01T08:00:00+08:00", "messageId": "a"}, basic_auth)
    post("track", {"userId": "u", "event": "B", "messageId": "b"}, basic_auth)
    a, b = BehaviourEvent.objects.get(message_id="a"), BehaviourEvent.objects.get(message_id="b")
    assert a.occurred_at.isoformat() == "2026-06-01T00:00:00+00:00"
    assert b.occurred_at == b.received_at


# --- errors: JSON with a stable code, never a 500, nothing stored ---------------------------------------------


def test_no_write_key(db):
    body = assert_error(post("track", {"userId": "u", "event": "A"}), 401, "missing_write_key")
    assert body["details"] == []


def test_wrong_write_key():
    response = post("track", {"userId": "u", "event": "A"}, {"HTTP_AUTHORIZATION": "Basic d3Jvbmc6"})
    assert_error(response, 401, "invalid_write_key")
    assert response["WWW-Authenticate"].startswith("Basic")


def test_a_turned_off_source_is_refused(source, basic_auth):
    EventSource.objects.filter(pk=source.pk).update(is_active=False)
    assert_error(post("track", {"userId": "u", "event": "A"}, basic_auth), 401, "invalid_write_key")


@pytest.mark.parametrize(
    ("path", "body", "field", "code"),
    [
        ("track", {"event": "A"}, "userId", "missing"),
        ("track", {"userId": "u"}, "event", "missing"),
        ("track", {"userId": "u", "event": "   "}, "event", "missing"),
        ("group", {"userId": "u"}, "groupId", "missing"),
        ("alias", {"userId": "u"}, "previousId", "missing"),
        ("track", {"userId": ["u"], "event": "A"}, "userId", "string_type"),
        ("track", {"userId": "u" * 201, "event": "A"}, "userId", "string_too_long"),
        ("track", {"userId": "u", "event": "A", "properties": [1]}, "properties", "dict_type"),
        ("track", {"userId": "u", "event": "A", "timestamp": "yesterday"}, "timestamp", "datetime_from_date_parsing"),
        ("track", {"userId": "u", "event": "A", "timestamp": "9999-12-31T23:00:00-05:00"}, "timestamp", "value_error"),
        ("track", {"userId": "u", "event": "A", "messageId": "m" * 101}, "messageId", "string_too_long"),
        ("batch", {"batch": {"type": "track"}}, "batch", "list_type"),
        ("batch", {"batch": ["track"]}, "batch.0", "dict_type"),
        ("batch", {"batch": [{"userId": "u", "event": "A"}]}, "batch.0.type", "missing"),
        ("batch", {"batch": [{"type": "click", "userId": "u"}]}, "batch.0.type", "literal_error"),
    ],
)
def test_invalid_events_get_a_400_naming_the_field(basic_auth, path, body, field, code):
    result = assert_error(post(path, body, basic_auth), 400, "validation_error")
    assert {(d["field"], d["code"]) for d in result["details"]} >= {(field, code)}, result["details"]
    assert all(d["message"] for d in result["details"])
    assert not BehaviourEvent.objects.exists()


def test_one_bad_event_refuses_the_whole_batch(basic_auth):
    body = {"batch": [{"type": "track", "userId": "u", "event": "A"}, {"type": "track", "userId": "u"}]}
    result = assert_error(post("batch", body, basic_auth), 400, "validation_error")
    assert [d["field"] for d in result["details"]] == ["batch.1.event"]
    assert not BehaviourEvent.objects.exists()


def test_errors_follow_the_callers_language(basic_auth):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-Hans", **basic_auth)
    response = client.post("/ingest/v1/track", data="{}", content_type="application/json")
    assert response.status_code == 400
    assert "userId" in response.json()["details"][0]["message"]
    assert response.json()["message"] != "Some events are not valid; none was stored."


def test_an_event_over_32_kb(basic_auth):
    big = {"userId": "u", "event": "A", "properties": {"text": "x" * 33_000}}
    assert_error(post("track", big, basic_auth), 400, "too_large")
    result = assert_error(post("batch", {"batch": [{**big, "type": "track"}]}, basic_auth), 400, "validation_error")
    assert result["details"][0] == {**result["details"][0], "field": "batch.0", "code": "too_large"}


def test_a_batch_over_500_kb(basic_auth):
    events = [{"type": "track", "userId": "u", "event": "A", "properties": {"t": "x" * 20_000}} for _ in range(30)]
    assert_error(post("batch", {"batch": events}, basic_auth), 400, "too_large")


def test_a_gzip_bomb_is_refused_after_the_limit(basic_auth):
    body = gzip.compress(b'{"batch": [], "pad": "' + b" " * 50_000_000 + b'"}')
    assert len(body) < 100_000
    assert_error(post("batch", body, basic_auth, HTTP_CONTENT_ENCODING="gzip"), 400, "too_large")


# A fixed mtime keeps the test id the same in every xdist worker.
TRUNCATED_GZIP = gzip.compress(b'{"userId": "u", "event": "A"}', mtime=0)[:-8]


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"{not json", {}, "invalid_json"),
        (b"[1, 2]", {}, "invalid_json"),
        (b"", {}, "invalid_json"),
        (b"\xff\xfe\x00garbage", {}, "invalid_json"),
        (b'{"userId": "u", "event": "A", "properties": {"x": NaN}}', {}, "invalid_json"),
        (b'{"userId": "u", "event": "A", "n": ' + b"1" * 5000 + b"}", {}, "invalid_json"),
        (b"[" * 16_000 + b"]" * 16_000, {}, "invalid_json"),
        (b"not gzip", {"HTTP_CONTENT_ENCODING": "gzip"}, "invalid_gzip"),
        (TRUNCATED_GZIP, {"HTTP_CONTENT_ENCODING": "gzip"}, "invalid_gzip"),
        (b"{}", {"HTTP_CONTENT_ENCODING": "br"}, "unsupported_encoding"),
    ],
)
def test_bodies_that_are_not_json_objects(basic_auth, body, headers, code):
    assert_error(post("track", body, {**basic_auth, **headers}), 400, code)


@pytest.mark.parametrize(
    "properties",
    [
        {"text": "a\u0000b"},
        {"a\u0000": 1},
        {"nested": [{"deep": "\u0000"}]},
        {"text": "\ud800"},
    ],
)
def test_text_a_database_cannot_store(basic_auth, properties):
    body = json.dumps({"userId": "u", "event": "A", "properties": properties}).encode()
    result = assert_error(post("track", body, basic_auth), 400, "validation_error")
    assert result["details"][0]["code"] == "invalid_text"


def test_a_backslash_before_u0000_is_ordinary_text(basic_auth):
    response = post("track", {"userId": "u", "event": "A", "properties": {"path": "C:\\u0000"}}, basic_auth)
    assert response.status_code == 200
    assert BehaviourEvent.objects.get().properties == {"path": "C:\\u0000"}


def test_deeply_nested_properties_are_stored(basic_auth):
    nested: dict = {}
    for _ in range(200):
        nested = {"n": nested}
    assert post("track", {"userId": "u", "event": "A", "properties": nested}, basic_auth).status_code == 200


def test_null_objects_count_as_empty(basic_auth):
    body = {"userId": "u", "event": "A", "properties": None, "context": None, "timestamp": None, "messageId": None}
    assert post("track", body, basic_auth).status_code == 200
    event = BehaviourEvent.objects.get()
    assert (event.properties, event.context) == ({}, {})


def test_a_busy_database_is_a_503_to_send_again(basic_auth, monkeypatch):
    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(tracking, "events_ingest", locked)
    response = post("track", {"userId": "u", "event": "A"}, basic_auth)
    assert_error(response, 503, "unavailable")
    assert response["Retry-After"]


def test_a_race_on_a_new_user_id_is_retried_once(basic_auth, monkeypatch):
    calls = []

    def racing(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise IntegrityError("UNIQUE constraint failed: customers_externalid.system, customers_externalid.value")
        return events_ingest(**kwargs)

    monkeypatch.setattr(tracking, "events_ingest", racing)
    assert post("track", {"userId": "u", "event": "A"}, basic_auth).status_code == 200
    assert len(calls) == 2 and BehaviourEvent.objects.count() == 1


def test_wrong_method_and_unknown_endpoint():
    assert_error(Client().get("/ingest/v1/track"), 405, "method_not_allowed")
    assert_error(Client().post("/ingest/v1/purchase", data="{}", content_type="application/json"), 404, "not_found")


def test_cors_preflight_for_browser_sdks():
    response = Client().options(
        "/ingest/v1/batch",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_no_csrf_token_is_needed(basic_auth):
    client = Client(enforce_csrf_checks=True, **basic_auth)
    response = client.post("/ingest/v1/track", data='{"userId": "u", "event": "A"}', content_type="text/plain")
    assert response.status_code == 200


def test_the_customer_page_shows_the_behaviour_events(basic_auth, admin_user):
    post("identify", {"userId": "u-1", "traits": {"name": "张三"}}, basic_auth)
    post("track", {"userId": "u-1", "event": "Order Completed"}, basic_auth)
    customer = Customer.objects.get()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)

    page = client.get(reverse("customers:detail", args=[customer.number])).content.decode()

    assert "Behaviour" in page and "Order Completed" in page and "官网" in page
    assert "First touch" in page and "Last touch" in page
