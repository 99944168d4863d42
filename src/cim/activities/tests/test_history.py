"""The customer's history: interactions with attachments, the merged timeline, and its pages and API."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.history_schemas import InteractionInput, OrderInput
from cim.activities.interactions import interaction_log
from cim.activities.models import Attachment, Interaction
from cim.activities.orders import order_create
from cim.activities.timeline import Cursor, timeline_page
from cim.customers.services import customers_tag
from cim.customers.tests.factories import make_customer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _uploads(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "uploads"


@pytest.fixture
def customer(admin_user):
    return make_customer(admin_user, display_name="赵敏", phones=[{"number": "13812345678"}])


def log(customer, actor, files=(), **fields):
    fields.setdefault("kind", "call")
    return interaction_log(customer=customer, data=InteractionInput(**fields), actor=actor, files=list(files))


def test_interaction_keeps_staff_contacts_and_checked_files(customer, admin_user, users):
    photo = SimpleUploadedFile("名片.png", PNG, content_type="image/png")
    logged = log(
        customer,
        admin_user,
        files=[photo],
        kind="visit",
        direction="outbound",
        outcome="interested",
        staff=[users[Role.SALES].username],
        contacts=["采购部 刘经理"],
        body="上门拜访，客户对新品感兴趣",
    )
    assert list(logged.staff.values_list("username", flat=True)) == [users[Role.SALES].username]
    assert logged.contacts == ["采购部 刘经理"]
    stored = logged.attachments.get()
    assert (stored.filename, stored.content_type, stored.size) == ("名片.png", "image/png", len(PNG))
    assert "名片" not in stored.file.name  # stored under a random name


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("page.html", b"<script>alert(1)</script>", "cannot be attached"),
        ("fake.pdf", b"MZ\x90\x00 an executable", "does not contain"),
        ("empty.txt", b"", "empty"),
    ],
)
def test_unsafe_or_mislabelled_files_refuse_the_whole_interaction(customer, admin_user, name, content, problem):
    with pytest.raises(ValidationError) as error, override("en"):
        log(customer, admin_user, files=[SimpleUploadedFile(name, content)])
    assert problem in " ".join(error.value.message_dict["files"])
    assert not Interaction.objects.exists()


def test_files_over_the_size_limit_are_refused(customer, admin_user, settings):
    settings.CIM_ATTACHMENT_MAX_MB = 1
    big = SimpleUploadedFile("录音.mp3", b"ID3" + b"\x00" * (1024 * 1024))
    with pytest.raises(ValidationError):
        log(customer, admin_user, files=[big])


def test_timeline_merges_every_kind_newest_first_and_pages_without_gaps(customer, admin_user):
    start = timezone.now() - timedelta(days=10)
    for day in range(6):
        log(customer, admin_user, occurred_at=start + timedelta(days=day), subject=f"电话{day}")
        order_create(
            customer=customer,
            data=OrderInput(ordered_at=start + timedelta(days=day), lines=[{"name": "茶", "unit_price": "1"}]),
            actor=admin_user,
        )
    customers_tag(customer_ids=[customer.pk], add=["VIP"], remove=[], actor=admin_user)
    seen, before = [], None
    while True:
        page = timeline_page(customer_id=customer.pk, before=before, limit=4)
        seen += page.entries
        if page.next_cursor is None:
            break
        before = Cursor.decode(page.next_cursor.encode())
    keys = [(entry.kind, entry.key) for entry in seen]
    assert len(keys) == len(set(keys)) == 6 + 6 + 2  # interactions, orders, created + tagged
    assert [e.at for e in seen] == sorted((e.at for e in seen), reverse=True)
    # Entries at the same moment keep one order, kind then id, across pages.
    same_time = [(e.kind, e.key) for e in seen if e.at == start]
    assert same_time == [("order", same_time[0][1]), ("interaction", same_time[1][1])]
    assert [e.kind for e in seen[:2]] == ["change", "change"]  # created and tagged today, after the backdated rest


def test_timeline_filters_by_kind(customer, admin_user):
    log(customer, admin_user, subject="回访")
    page = timeline_page(customer_id=customer.pk, kinds=["interaction"])
    assert [entry.kind for entry in page.entries] == ["interaction"]


def test_timeline_asks_only_the_sources_that_hold_something(customer, admin_user, django_assert_max_num_queries):
    log(customer, admin_user, subject="回访")
    # One query for which of the ten sources hold anything; then changes and interactions, two queries each.
    with django_assert_max_num_queries(5):
        kinds = {entry.kind for entry in timeline_page(customer_id=customer.pk).entries}
    assert kinds == {"change", "interaction"}


def test_customer_page_shows_purchases_quick_log_and_timeline(customer, admin_user):
    order_create(customer=customer, data=OrderInput(lines=[{"name": "茶", "unit_price": "88"}]), actor=admin_user)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    page = client.get(f"/customers/{customer.number}/").content.decode()
    assert 'id="quick-log"' in page and 'id="purchases"' in page and "88.00" in page
    assert "Order O" in page  # the order on the timeline


def test_quick_log_from_the_customer_page_takes_two_clicks(customer, users):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(users[Role.SALES])
    customer.owner = users[Role.SALES]
    customer.save(update_fields=["owner"])
    response = client.post(
        f"/activities/customers/{customer.number}/interactions/new/", {"kind": "wechat", "body": "发了新品目录"}
    )
    assert response.status_code == 302
    logged = Interaction.objects.get()
    assert (logged.kind, logged.body, logged.logged_by) == ("wechat", "发了新品目录", users[Role.SALES])


def test_attachments_download_only_within_scope(customer, admin_user, users):
    logged = log(customer, admin_user, files=[SimpleUploadedFile("a.txt", b"hello")])
    attachment = Attachment.objects.get(interaction=logged)
    admin = Client()
    admin.force_login(admin_user)
    response = admin.get(f"/activities/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    sales = Client()
    sales.force_login(users[Role.SALES])  # sees only own customers; this one is the administrator's
    assert sales.get(f"/activities/attachments/{attachment.pk}/").status_code == 404


def test_timeline_partial_pages_through_htmx(customer, admin_user):
    for i in range(35):
        log(customer, admin_user, subject=f"记录{i}", occurred_at=timezone.now() - timedelta(minutes=i))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    first = client.get(f"/activities/customers/{customer.number}/timeline/?kind=interaction", HTTP_HX_REQUEST="true")
    html = first.content.decode()
    assert html.count('data-kind="interaction"') == 30
    cursor = html.split("before=")[1].split("&")[0].split('"')[0]
    more = client.get(
        f"/activities/customers/{customer.number}/timeline/?before={cursor}&kind=interaction", HTTP_HX_REQUEST="true"
    )
    assert more.content.decode().count('data-kind="interaction"') == 5


def test_api_records_orders_refunds_and_reads_the_timeline(customer, admin_user, api_client):
    client = api_client(admin_user)
    created = client.post(
        f"/api/v1/customers/{customer.number}/orders",
        {"number": "API-1", "lines": [{"sku": "X", "name": "礼盒", "quantity": 2, "unit_price": "99.90"}]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    order_id = created.json()["id"]
    assert created.json()["total_amount"] == "199.80"
    refunded = client.post(f"/api/v1/orders/{order_id}/refund", {"amount": "50"}, content_type="application/json")
    assert refunded.json()["net_amount"] == "149.80"
    too_much = client.post(f"/api/v1/orders/{order_id}/refund", {"amount": "500"}, content_type="application/json")
    assert too_much.status_code == 422 and too_much.json()["details"][0]["field"] == "amount"
    activity = client.get(f"/api/v1/customers/{customer.number}/activity").json()
    assert activity["orders"]["spent"] == "149.80"
    timeline = client.get(f"/api/v1/customers/{customer.number}/timeline?kinds=order&kinds=refund").json()
    assert [item["kind"] for item in timeline["items"]] == ["refund", "order"]
    bad = client.get(f"/api/v1/customers/{customer.number}/timeline?kinds=nope")
    assert bad.status_code == 422


def test_api_logs_interactions_and_takes_attachments(customer, admin_user, api_client):
    client = api_client(admin_user)
    created = client.post(
        f"/api/v1/customers/{customer.number}/interactions",
        {"kind": "call", "direction": "inbound", "subject": "咨询价格", "duration_minutes": 5},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    interaction_id = created.json()["id"]
    upload = client.post(
        f"/api/v1/interactions/{interaction_id}/attachments", {"file": SimpleUploadedFile("记录.txt", b"notes")}
    )
    assert upload.status_code == 201, upload.content
    refused = client.post(
        f"/api/v1/interactions/{interaction_id}/attachments", {"file": SimpleUploadedFile("x.exe", b"MZ")}
    )
    assert refused.status_code == 422
    detail = client.get(f"/api/v1/interactions/{interaction_id}").json()
    assert [a["filename"] for a in detail["attachments"]] == ["记录.txt"]


def test_a_merge_moves_the_whole_history_and_unmerge_gives_it_back(customer, admin_user):
    from cim.activities.models import FollowUp, Order
    from cim.quality.merge import customer_merge, customer_unmerge
    from cim.service.models import Ticket
    from cim.service.services import ticket_create

    duplicate = make_customer(admin_user, display_name="赵敏", phones=[{"number": "13912345678"}])
    placed = order_create(
        customer=duplicate, data=OrderInput(lines=[{"name": "茶", "unit_price": "5"}]), actor=admin_user
    )
    call = log(duplicate, admin_user, subject="回访")
    task = FollowUp.objects.create(customer=duplicate, title="回电", owner=admin_user, due_at=timezone.now())
    ticket = ticket_create(customer=duplicate, subject="破损", channel="phone", actor=admin_user)
    record = customer_merge(survivor=customer, duplicates=[duplicate], actor=admin_user)
    for model, pk in ((Order, placed.pk), (Interaction, call.pk), (FollowUp, task.pk), (Ticket, ticket.pk)):
        assert model.objects.get(pk=pk).customer_id == customer.pk, model
    kinds = {entry.kind for entry in timeline_page(customer_id=customer.pk).entries}
    assert {"order", "interaction", "follow_up", "ticket"} <= kinds
    customer_unmerge(record=record, actor=admin_user)
    for model, pk in ((Order, placed.pk), (Interaction, call.pk), (FollowUp, task.pk), (Ticket, ticket.pk)):
        assert model.objects.get(pk=pk).customer_id == duplicate.pk, model


def test_a_malformed_multipart_body_is_a_clear_400(customer, admin_user, api_client):
    call = log(customer, admin_user)
    response = api_client(admin_user).post(
        f"/api/v1/interactions/{call.pk}/attachments", data=b"--x\r\n", content_type="multipart/form-data"
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_multipart"
