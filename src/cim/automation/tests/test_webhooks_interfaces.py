"""Webhooks from the pages, the API and the CLI, for every role; errors per field in the caller's language."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from cim.accounts.roles import Role
from cim.automation import webhooks as hooks
from cim.automation.events import CATALOGUE, events_dispatch
from cim.automation.models import WebhookDelivery, WebhookEndpoint
from cim.automation.tests.webhook_receiver import Receiver
from cim.automation.webhooks import webhook_endpoint_create
from cim.customers.tests.factories import make_customer


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


def _login(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _endpoint(admin_user, receiver, **data) -> WebhookEndpoint:
    values = {"url": receiver.url, "event_types": ["customer.created"], "scope_role": "administrator", **data}
    endpoint, secret = webhook_endpoint_create(data=values, actor=admin_user)
    receiver.secrets.append(secret)
    return endpoint


def _failed_delivery(admin_user, receiver) -> WebhookDelivery:
    endpoint = _endpoint(admin_user, receiver)
    make_customer(admin_user)
    events_dispatch()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=8, last_error="HTTP 500")
    assert delivery.endpoint == endpoint
    return delivery


# --- API


def test_api_create_shows_the_secret_once(api_client, admin_user, receiver):
    client = api_client(admin_user)
    body = {"url": receiver.url, "event_types": ["customer.created"], "scope_role": "marketing"}
    response = client.post("/api/v1/webhooks", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["secret"].startswith("whsec_") and data["endpoint"]["scope_role"] == "marketing"
    endpoint_id = data["endpoint"]["id"]
    shown = client.get(f"/api/v1/webhooks/{endpoint_id}").json()
    assert "secret" not in shown and data["secret"] not in json.dumps(client.get("/api/v1/webhooks").json())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com", "all_events": True, "scope_role": "administrator"}, "url"),
        ({"url": "https://example.com", "event_types": ["no.such"], "scope_role": "administrator"}, "event_types"),
        ({"url": "https://example.com", "scope_role": "administrator"}, "event_types"),
        ({"url": "https://example.com", "all_events": True, "scope_role": "sales"}, "scope_role"),
        ({"url": "https://example.com", "all_events": True}, "scope_role"),
        ({"url": "https://example.com", "all_events": True, "scope_user": "nobody"}, "scope_user"),
    ],
)
def test_api_refuses_bad_input_per_field(api_client, admin_user, body, field):
    response = api_client(admin_user).post("/api/v1/webhooks", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422, response.content
    details = response.json()["details"]
    assert field in {detail["field"] for detail in details}, details


def test_api_errors_come_in_chinese(admin_user):
    from cim.accounts.services import api_token_create

    _, raw = api_token_create(user=admin_user, scope="write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = {"url": "ftp://example.com", "all_events": True, "scope_role": "administrator"}
    response = client.post("/api/v1/webhooks", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["details"][0]["message"])


def test_api_delivery_log_replay_and_test_send(api_client, admin_user, receiver):
    delivery = _failed_delivery(admin_user, receiver)
    client = api_client(admin_user)

    page = client.get("/api/v1/webhooks/deliveries?status=dead").json()
    assert [item["id"] for item in page["items"]] == [delivery.pk] and page["next_before"] is None
    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery.pk}").json()
    assert detail["payload"]["type"] == "customer.created" and detail["message_id"] == delivery.message_id

    replayed = client.post("/api/v1/webhooks/deliveries/replay", data="{}", content_type="application/json")
    assert replayed.json() == {"replayed": 1}
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "pending"

    tested = client.post(f"/api/v1/webhooks/{delivery.endpoint_id}/test")
    assert tested.status_code == 200 and tested.json()["status"] == "succeeded"
    assert receiver.received[-1].payload["type"] == "webhook.test" and receiver.bad_signatures == 0


def test_api_rotate_patch_and_delete(api_client, admin_user, receiver):
    endpoint = _endpoint(admin_user, receiver)
    client = api_client(admin_user)
    rotated = client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["previous_valid_until"]
    patched = client.patch(
        f"/api/v1/webhooks/{endpoint.pk}", data=json.dumps({"all_events": True}), content_type="application/json"
    )
    assert patched.json()["all_events"] is True
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_api_catalogue_lists_every_event_type(api_client, users):
    response = api_client(users[Role.SALES]).get("/api/v1/events/catalogue")
    assert {event["name"] for event in response.json()} == set(CATALOGUE)


# --- Pages


PAGES = ["/automation/webhooks/", "/automation/webhooks/new/", "/automation/webhooks/deliveries/"]


@pytest.mark.parametrize("role", list(Role))
def test_pages_for_every_role(users, role, admin_user, receiver):
    delivery = _failed_delivery(admin_user, receiver)
    client = _login(users[role])
    paths = [
        *PAGES,
        f"/automation/webhooks/{delivery.endpoint_id}/",
        f"/automation/webhooks/{delivery.endpoint_id}/edit/",
        f"/automation/webhooks/deliveries/{delivery.pk}/",
    ]
    for path in paths:
        expected = 200 if role == Role.ADMINISTRATOR else 403
        assert client.get(path).status_code == expected, (role, path)
    catalogue = client.get("/automation/events/")
    assert catalogue.status_code == 200 and b"customer.merged" in catalogue.content


def test_page_create_shows_the_secret_once_and_test_sends(admin_user, receiver):
    client = _login(admin_user)
    form = {"url": receiver.url, "event_types": ["customer.created", "order.placed"], "scope_role": "administrator"}
    response = client.post("/automation/webhooks/new/", form, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["customer.created", "order.placed"]
    assert endpoint.secret.encode() in response.content
    assert endpoint.secret.encode() not in client.get(f"/automation/webhooks/{endpoint.pk}/").content

    receiver.secrets.append(endpoint.secret)
    tested = client.post(f"/automation/webhooks/{endpoint.pk}/test/", follow=True)
    assert b"The test message was received" in tested.content
    assert receiver.bad_signatures == 0 and receiver.received


def test_page_form_errors_per_field_in_chinese(admin_user):
    client = _login(admin_user, "zh-hans")
    response = client.post("/automation/webhooks/new/", {"url": "https://example.com/h", "scope_role": "administrator"})
    assert response.status_code == 200 and not WebhookEndpoint.objects.exists()
    assert "至少".encode() in response.content  # "choose at least one event type", in Chinese


def test_page_delivery_log_filters_and_replays(admin_user, receiver):
    delivery = _failed_delivery(admin_user, receiver)
    client = _login(admin_user)
    listed = client.get(f"/automation/webhooks/deliveries/?status=dead&endpoint={delivery.endpoint_id}")
    assert f'data-delivery="{delivery.pk}"'.encode() in listed.content
    assert b"data-delivery" not in client.get("/automation/webhooks/deliveries/?status=succeeded").content

    client.post("/automation/webhooks/deliveries/replay/", {"endpoint": delivery.endpoint_id})
    assert WebhookDelivery.objects.get().status == "pending"
    WebhookDelivery.objects.update(status="dead")
    client.post(f"/automation/webhooks/deliveries/{delivery.pk}/replay/")
    assert WebhookDelivery.objects.get().status == "pending"


def test_page_switch_off_rotate_and_delete(admin_user, receiver):
    endpoint = _endpoint(admin_user, receiver)
    client = _login(admin_user)
    client.post(f"/automation/webhooks/{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    rotated = client.post(f"/automation/webhooks/{endpoint.pk}/rotate-secret/", follow=True)
    endpoint.refresh_from_db()
    assert endpoint.secret.encode() in rotated.content and endpoint.previous_secret
    client.post(f"/automation/webhooks/{endpoint.pk}/delete/")
    assert not WebhookEndpoint.objects.exists()


# --- CLI


def _cli(*args) -> dict:
    from io import StringIO

    out = StringIO()
    call_command("webhooks", *args, "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_cli_create_list_test_deliveries_and_replay(admin_user, receiver):
    created = _cli("create", receiver.url, "--event", "customer.created", "--scope-role", "administrator")
    receiver.secrets.append(created["secret"])
    assert [e["id"] for e in _cli("list")["endpoints"]] == [created["id"]]

    assert _cli("test", str(created["id"]))["status"] == "succeeded"
    make_customer(admin_user)
    events_dispatch()
    assert _cli("send", "--seconds", "2")["succeeded"] == 1
    deliveries = _cli("deliveries", "--endpoint", str(created["id"]))["deliveries"]
    assert {d["event_type"] for d in deliveries} == {"webhook.test", "customer.created"}
    assert _cli("replay", "--delivery", str(deliveries[0]["id"]))["replayed"] == 1
    assert _cli("replay", "--since", "2000-01-01T00:00:00")["replayed"] == 0
    assert _cli("rotate", str(created["id"]))["secret"].startswith("whsec_")


def test_cli_refuses_bad_input(db):
    with pytest.raises(CommandError, match="scope_role"):
        call_command("webhooks", "create", "https://example.com/h", "--all-events")
    with pytest.raises(CommandError, match="No webhook endpoint"):
        call_command("webhooks", "test", "999")
    with pytest.raises(CommandError, match="ISO"):
        call_command("webhooks", "replay", "--since", "yesterday")
