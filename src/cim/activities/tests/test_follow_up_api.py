"""The follow-up API: lists by view, writes through the services, errors per field, scope and roles."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from cim.accounts.roles import Role
from cim.activities.follow_ups import follow_up_complete
from cim.activities.models import CallbackPlan, FollowUp, Interaction, Notification
from cim.activities.tests.follow_up_factories import make_follow_up, make_plan, make_user, noon
from cim.audit.models import AuditEvent
from cim.customers.models import Customer
from cim.customers.saved_views import saved_view_save
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales(users):
    return users[Role.SALES]


@pytest.fixture
def customer(admin_user, sales, team):
    return make_customer(admin_user, display_name="王五", owner_id=sales.pk, team_id=team.pk)


@pytest.fixture
def api(api_client, sales):
    return api_client(sales)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def post(client, path, body=None):
    return client.post(f"/api/v1{path}", data=body or {}, content_type="application/json")


def patch(client, path, body):
    return client.patch(f"/api/v1{path}", data=body, content_type="application/json")


def test_create_read_update_complete_reopen_cancel(api, customer, sales):
    response = post(
        api,
        "/follow-ups",
        {"customer": customer.number.lower(), "title": "报价回访", "due_at": "2030-05-01T10:00:00+08:00"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["customer"]["number"], body["owner"]["username"], body["priority"]) == (
        customer.number,
        sales.username,
        "normal",
    )
    assert at(body["remind_at"]) == at("2030-05-01T09:00:00+08:00") and body["overdue"] is False
    follow_up_id = body["id"]

    assert api.get(f"/api/v1/follow-ups/{follow_up_id}").json()["title"] == "报价回访"
    changed = patch(api, f"/follow-ups/{follow_up_id}", {"due_at": "2030-05-02T10:00:00+08:00", "priority": "high"})
    assert changed.status_code == 200
    assert at(changed.json()["remind_at"]) == at("2030-05-02T09:00:00+08:00") and changed.json()["priority"] == "high"

    call = Interaction.objects.create(customer=customer, kind="call", occurred_at=timezone.now())
    done = post(api, f"/follow-ups/{follow_up_id}/complete", {"interaction_id": call.pk}).json()
    assert (done["status"], done["interaction_id"]) == ("done", call.pk) and done["done_at"]
    assert post(api, f"/follow-ups/{follow_up_id}/reopen").json()["status"] == "open"
    assert post(api, f"/follow-ups/{follow_up_id}/cancel").json()["status"] == "cancelled"
    assert list(
        AuditEvent.objects.filter(target_type="activities.followup").order_by("id").values_list("action", flat=True)
    ) == [
        "follow_up.create",
        "follow_up.update",
        "follow_up.complete",
        "follow_up.reopen",
        "follow_up.cancel",
    ]


def test_create_without_a_reminder_and_with_a_naive_time(api, customer):
    body = post(
        api,
        "/follow-ups",
        {"customer": customer.number, "title": "回访", "due_at": "2030-05-01T10:00", "remind_at": None},
    ).json()
    assert body["remind_at"] is None and at(body["due_at"]) == at("2030-05-01T10:00:00+08:00")  # read in Shanghai time


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"priority": "asap"}, "priority"),
        ({"owner_id": 999999}, "owner_id"),
        ({"owner": "analyst"}, "owner_id"),
        ({"remind_at": "2031-01-01T00:00:00+08:00"}, "remind_at"),
    ],
)
def test_create_errors_name_their_field(api, customer, users, body, field):
    payload = {"customer": customer.number, "title": "回访", "due_at": "2030-05-01T10:00:00+08:00", **body}
    if payload.pop("owner", None):
        payload["owner_id"] = users[Role.ANALYST].pk
    response = post(api, "/follow-ups", payload)
    assert response.status_code == 422, response.content
    assert [d["field"] for d in response.json()["details"]] == [field]
    assert not FollowUp.objects.exists()


def test_a_customer_outside_the_scope_is_404(api, admin_user, other_team):
    stranger = make_customer(admin_user, owner_id=make_user(Role.SALES, "other", other_team).pk)
    response = post(api, "/follow-ups", {"customer": stranger.number, "title": "回访", "due_at": "2030-05-01T10:00"})
    assert response.status_code == 404
    theirs = make_follow_up(stranger, admin_user)
    assert api.get(f"/api/v1/follow-ups/{theirs.pk}").status_code == 404
    assert post(api, f"/follow-ups/{theirs.pk}/complete").status_code == 404
    assert api.get(f"/api/v1/customers/{stranger.number}/follow-ups").status_code == 404


def test_complete_with_another_customers_interaction_is_refused(api, customer, sales, admin_user):
    follow_up = make_follow_up(customer, sales)
    elsewhere = Interaction.objects.create(
        customer=make_customer(admin_user, owner_id=sales.pk), kind="call", occurred_at=timezone.now()
    )
    response = post(api, f"/follow-ups/{follow_up.pk}/complete", {"interaction_id": elsewhere.pk})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "interaction_id"
    assert FollowUp.objects.get(pk=follow_up.pk).status == "open"


def test_patch_refuses_nulls_and_closed_follow_ups(api, customer, sales):
    follow_up = make_follow_up(customer, sales)
    assert patch(api, f"/follow-ups/{follow_up.pk}", {"title": None}).status_code == 422
    follow_up_complete(follow_up=follow_up, actor=sales)
    response = patch(api, f"/follow-ups/{follow_up.pk}", {"title": "新"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "status"


def test_lists_mine_overdue_and_by_customer_with_cursor(api, customer, sales, users):
    late = make_follow_up(customer, sales, title="逾期", due_at=timezone.now() - timedelta(days=1))
    soon = make_follow_up(customer, sales, title="明天", due_at=noon(1))
    make_follow_up(customer, sales, title="经理的", due_at=noon(2), owner=users[Role.MANAGER])
    done = follow_up_complete(follow_up=make_follow_up(customer, sales, title="完成"), actor=sales)

    first = api.get("/api/v1/follow-ups?limit=1").json()
    second = api.get(f"/api/v1/follow-ups?limit=1&cursor={first['next_cursor']}").json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [late.pk, soon.pk] and second["next_cursor"] is None
    assert [i["id"] for i in api.get("/api/v1/follow-ups?view=overdue").json()["items"]] == [late.pk]
    assert api.get("/api/v1/follow-ups?view=overdue").json()["items"][0]["overdue"] is True
    assert [i["id"] for i in api.get("/api/v1/follow-ups?status=done").json()["items"]] == [done.pk]
    assert len(api.get(f"/api/v1/customers/{customer.number}/follow-ups").json()["items"]) == 3
    assert len(api.get(f"/api/v1/customers/{customer.number}/follow-ups?status=any").json()["items"]) == 4


def test_team_overdue_needs_the_performance_right(api_client, api, customer, sales, users):
    late = make_follow_up(customer, sales, due_at=timezone.now() - timedelta(days=1), owner=users[Role.MANAGER])
    assert api.get("/api/v1/follow-ups?view=team_overdue").status_code == 403
    items = api_client(users[Role.MANAGER]).get("/api/v1/follow-ups?view=team_overdue").json()["items"]
    assert [i["id"] for i in items] == [late.pk]


def test_list_query_count_does_not_grow_with_rows(api, customer, sales, django_assert_max_num_queries):
    make_follow_up(customer, sales)
    with django_assert_max_num_queries(10) as few:
        api.get("/api/v1/follow-ups")
    for day in range(5):
        make_follow_up(customer, sales, due_at=noon(day + 2))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(api.get("/api/v1/follow-ups").json()["items"]) == 6


def test_notifications_list_read_and_read_all(api, sales, users):
    first = Notification.objects.create(user=sales, title="一", url="/activities/follow-ups/")
    Notification.objects.create(user=sales, title="二")
    theirs = Notification.objects.create(user=users[Role.MANAGER], title="三")
    assert [n["title"] for n in api.get("/api/v1/notifications").json()["items"]] == ["二", "一"]
    assert post(api, f"/notifications/{first.pk}/read").json()["read_at"]
    assert [n["title"] for n in api.get("/api/v1/notifications?unread=true").json()["items"]] == ["二"]
    assert post(api, f"/notifications/{theirs.pk}/read").status_code == 404
    assert post(api, "/notifications/read-all").json() == {"read": 1}
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_callback_plans_create_list_change_run(api_client, admin_user, customer, sales):
    Customer.objects.filter(pk=customer.pk).update(value_tier="vip")
    view = saved_view_save(user=admin_user, name="VIP", query="value_tier=vip")
    admin = api_client(admin_user)
    response = post(
        admin, "/callback-plans", {"name": "VIP", "saved_view_id": view.pk, "every_days": 30, "title": "回访"}
    )
    assert response.status_code == 201, response.content
    plan = response.json()
    assert (plan["default_owner"]["id"], plan["open_count"], plan["saved_view"]["query"]) == (
        admin_user.pk,
        0,
        "value_tier=vip",
    )
    changed = patch(admin, f"/callback-plans/{plan['id']}", {"every_days": 7, "priority": "urgent"}).json()
    assert (changed["every_days"], changed["priority"]) == (7, "urgent")
    assert post(admin, "/callback-plans/run").json() == [
        {"plan_id": plan["id"], "name": "VIP", "created": 1, "error": ""}
    ]
    assert admin.get("/api/v1/callback-plans").json()[0]["open_count"] == 1
    assert FollowUp.objects.get(plan_id=plan["id"]).owner == sales


def test_callback_plan_errors_name_their_field(api_client, admin_user, users):
    admin = api_client(admin_user)
    private = saved_view_save(user=users[Role.SALES], name="我的", query="value_tier=vip")
    body = {"name": "VIP", "saved_view_id": private.pk, "every_days": 30, "title": "回访"}
    response = post(admin, "/callback-plans", body)
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "saved_view_id"
    existing = make_plan(admin_user)
    response = post(
        admin,
        "/callback-plans",
        {**body, "saved_view_id": existing.saved_view_id, "default_owner_id": users["auditor"].pk},
    )
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "default_owner_id"
    assert CallbackPlan.objects.count() == 1
