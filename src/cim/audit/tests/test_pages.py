"""The audit page and API: who may read them, filters, paging, export and the verify button."""

import csv
import io

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from cim.audit.models import AuditEvent
from cim.audit.services import audit_record, audit_record_bulk

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def log(admin_user, users):
    audit_record(actor=admin_user, action="tag.create", target=None, target_type="customers.tag", target_id="1")
    audit_record(
        actor=users["sales"],
        action="customer.update",
        target=None,
        target_type="customers.customer",
        target_id="42",
        fields=["alias"],
        note="=cmd|' /C calc'!A0",
    )
    audit_record_bulk(actor=None, action="customer.lifecycle", target_type="customers.customer", target_ids=range(60))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("auditor", True), ("manager", True), ("administrator", True), ("sales", False), ("analyst", False)],
)
def test_who_sees_the_page_and_the_link(users, role, allowed):
    client = _client(users[role])
    assert client.get(reverse("audit:list")).status_code == (200 if allowed else 403)
    home = client.get(reverse("customers:list")).content.decode()
    assert (reverse("audit:list") in home) is allowed


def test_filters_and_paging(users, log):
    client = _client(users["auditor"])
    page = client.get(reverse("audit:list"), {"action": "customer.update"}).content.decode()
    assert "customers.customer" in page and "tag.create" not in page.split("<tbody>")[1]
    first = client.get(reverse("audit:list"), {"action": "customer.lifecycle"})
    assert first.context["next_cursor"] and len(first.context["events"]) == 50
    second = client.get(reverse("audit:list"), {"action": "customer.lifecycle", "cursor": first.context["next_cursor"]})
    assert len(second.context["events"]) == 10
    assert first.context["events"][-1].seq > second.context["events"][0].seq
    by_actor = client.get(reverse("audit:list"), {"actor": "sales-user"})
    assert [e.action for e in by_actor.context["events"]] == ["customer.update"]
    system = client.get(reverse("audit:list"), {"actor": "-", "action": "customer."})
    assert {e.action for e in system.context["events"]} == {"customer.lifecycle"}
    bad = client.get(reverse("audit:list"), {"at_from": "not-a-time", "cursor": "garbage"})
    assert bad.status_code == 200 and len(bad.context["filter_errors"]) == 2


def test_page_query_count_is_flat(users, log, django_assert_max_num_queries):
    client = _client(users["auditor"])
    client.get(reverse("audit:list"))
    with django_assert_max_num_queries(8):
        client.get(reverse("audit:list"))


def test_export_csv_and_xlsx_are_recorded(users, log):
    client = _client(users["auditor"])
    response = client.get(reverse("audit:list"), {"action": "customer.update", "export": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][0] == "Seq" and len(rows) == 2
    assert rows[1][3] == "customer.update" and rows[1][8].startswith("'=")  # a formula is neutralised
    response = client.get(reverse("audit:list"), {"export": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet.max_row >= 63
    exports = AuditEvent.objects.filter(action="audit.export", actor=users["auditor"]).order_by("seq")
    assert [e.note.split()[0] for e in exports] == ["format=csv", "format=xlsx"]
    assert "action=customer.update" in exports[0].note


def test_verify_button(users, log):
    client = _client(users["auditor"])
    response = client.post(reverse("audit:verify"), HTTP_HX_REQUEST="true")
    assert 'data-verified="ok"' in response.content.decode()
    victim = AuditEvent.objects.order_by("seq")[2]
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET target_id = 'x' WHERE id = %s", [victim.pk])
    body = client.post(reverse("audit:verify")).content.decode()
    assert 'data-verified="changed"' in body and f"Event {victim.seq} (id {victim.pk})" in body
    assert AuditEvent.objects.filter(action="audit.verify").count() == 2
    assert _client(users["sales"]).post(reverse("audit:verify")).status_code == 403


def test_api_list_and_verify(users, log, api_client):
    client = api_client(users["auditor"])
    body = client.get("/api/v1/audit/events", {"action": "customer.lifecycle", "limit": 40}).json()
    assert len(body["items"]) == 40 and body["next_cursor"]
    rest = client.get("/api/v1/audit/events", {"action": "customer.lifecycle", "cursor": body["next_cursor"]}).json()
    assert len(rest["items"]) == 20 and rest["next_cursor"] is None
    item = client.get("/api/v1/audit/events", {"actor": "sales-user"}).json()["items"][0]
    assert item["action"] == "customer.update" and item["actor"] == "sales-user" and item["fields"] == ["alias"]
    assert client.get("/api/v1/audit/events", {"at_from": "yesterday"}).status_code == 422
    result = client.post("/api/v1/audit/verify").json()
    assert result["ok"] is True and result["problem"] == ""
