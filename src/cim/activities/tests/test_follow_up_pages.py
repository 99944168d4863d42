"""The follow-up pages for every role, and the journeys: add from the customer page, complete and reopen from the
list, edit, plan call-backs, read notifications."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

from cim.accounts.roles import Perm, Role, has_perm
from cim.activities.follow_up_selectors import customer_follow_ups
from cim.activities.follow_ups import callback_plans_run, follow_up_complete, follow_up_reminders_send
from cim.activities.models import CallbackPlan, FollowUp, Interaction, Notification
from cim.activities.tests.follow_up_factories import make_follow_up, make_plan, make_user, noon
from cim.customers.saved_views import saved_view_save
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """Templates rendered outside a request are in English here, like the pages the English client asks for."""
    with translation.override("en"):
        yield


ALL_ROLES = [r.value for r in Role]


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def sales(users):
    return users[Role.SALES]


@pytest.fixture
def customer(admin_user, sales, team):
    return make_customer(admin_user, display_name="王五", owner_id=sales.pk, team_id=team.pk)


@pytest.fixture
def follow_up(customer, sales):
    return make_follow_up(customer, sales, title="报价回访", due_at=timezone.now() - timedelta(hours=1))


def test_pages_need_login(client):
    response = client.get(reverse("activities:follow_ups"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize(
    ("name", "perm"),
    [
        ("activities:follow_ups", Perm.CUSTOMER_VIEW),
        ("activities:follow_ups_overdue", Perm.PERFORMANCE_VIEW),
        ("activities:follow_up_create", Perm.ACTIVITY_LOG),
        ("activities:callback_plans", Perm.SETTINGS_MANAGE),
        ("activities:callback_plan_create", Perm.SETTINGS_MANAGE),
        ("activities:notifications", None),
    ],
)
def test_pages_by_role(users, follow_up, role, name, perm):
    expected = 200 if perm is None or has_perm(users[role], perm) else 403
    assert client_for(users[role]).get(reverse(name)).status_code == expected


@pytest.mark.parametrize("role", ALL_ROLES)
def test_a_follow_up_page_by_role(users, follow_up, role):
    """Every role that sees the customer reads it (all do: the customer is the team's); those who log may edit."""
    response = client_for(users[role]).get(reverse("activities:follow_up", args=[follow_up.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "报价回访" in page and "王五" in page
    assert ("Mark done" in page) == has_perm(users[role], Perm.ACTIVITY_LOG)


def test_a_follow_up_outside_the_scope_is_404(follow_up, other_team):
    stranger = make_user(Role.SALES, "stranger", other_team)
    assert client_for(stranger).get(reverse("activities:follow_up", args=[follow_up.pk])).status_code == 404
    response = client_for(stranger).post(reverse("activities:follow_up_complete", args=[follow_up.pk]))
    assert response.status_code == 404
    assert FollowUp.objects.get(pk=follow_up.pk).status == "open"


def test_my_follow_ups_tabs_complete_and_reopen(sales, customer, follow_up):
    later = make_follow_up(customer, sales, title="下周拜访", due_at=noon(7))
    client = client_for(sales)
    today = client.get(reverse("activities:follow_ups")).content.decode()
    assert "报价回访" in today and "下周拜访" not in today
    assert "下周拜访" in client.get(reverse("activities:follow_ups") + "?tab=upcoming").content.decode()

    back = reverse("activities:follow_ups") + "?tab=overdue"
    response = client.post(reverse("activities:follow_up_complete", args=[follow_up.pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert FollowUp.objects.get(pk=follow_up.pk).status == "done"
    done = client.get(reverse("activities:follow_ups") + "?tab=done").content.decode()
    assert "报价回访" in done and "Reopen" in done and "下周拜访" not in done

    client.post(reverse("activities:follow_up_reopen", args=[follow_up.pk]))
    assert FollowUp.objects.get(pk=follow_up.pk).status == "open"
    assert FollowUp.objects.get(pk=later.pk).status == "open"


def test_roles_that_do_not_log_cannot_complete(users, follow_up):
    response = client_for(users[Role.ANALYST]).post(reverse("activities:follow_up_complete", args=[follow_up.pk]))
    assert response.status_code == 403
    assert FollowUp.objects.get(pk=follow_up.pk).status == "open"


def test_my_follow_ups_query_count_does_not_grow_with_rows(sales, customer, django_assert_max_num_queries):
    client = client_for(sales)
    make_follow_up(customer, sales, due_at=noon())
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("activities:follow_ups"))
    for hour in range(10):
        make_follow_up(customer, sales, due_at=noon() + timedelta(minutes=hour))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("activities:follow_ups"))


def test_add_from_the_customer_page_card(sales, customer):
    context = {
        "customer": customer,
        "follow_ups": customer_follow_ups(user=sales, customer=customer),
        "request": RequestFactory().get("/"),
    }
    card = render_to_string("activities/_customer_follow_ups.html", context)
    assert 'id="follow-ups"' in card and "Add follow-up" in card and f'value="{sales.pk}" selected' in card

    due = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    back = reverse("customers:detail", args=[customer.number]) + "#follow-ups"
    response = client_for(sales).post(
        reverse("activities:follow_up_create"),
        {
            "customer": customer.number,
            "title": "寄样品",
            "due_at": due,
            "owner": sales.pk,
            "priority": "normal",
            "next": back,
        },
    )
    assert response.status_code == 302 and response["Location"] == back
    created = FollowUp.objects.get(title="寄样品")
    assert created.customer == customer and created.owner == sales and created.remind_at is not None
    partial = client_for(sales).get(reverse("activities:customer_follow_ups", args=[customer.number]))
    assert "寄样品" in partial.content.decode()


def test_the_card_offers_no_form_to_roles_that_do_not_log(users, customer):
    follow_ups = customer_follow_ups(user=users[Role.AUDITOR], customer=customer)
    card = render_to_string("activities/_customer_follow_ups.html", {"customer": customer, "follow_ups": follow_ups})
    assert "Add follow-up" not in card and not follow_ups.owners


def test_create_form_errors_stay_on_the_page(sales, customer, users):
    client = client_for(sales)
    due = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("activities:follow_up_create"),
        {"customer": "C0000", "title": "回访", "due_at": due, "priority": "normal"},
    )
    assert response.status_code == 200 and "None of your customers has this number." in response.content.decode()
    response = client.post(
        reverse("activities:follow_up_create"),
        {"customer": customer.number, "title": "", "due_at": "", "owner": users[Role.ANALYST].pk, "priority": "normal"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and page.count("is-invalid") >= 3
    assert not FollowUp.objects.exists()


def test_owner_choices_follow_the_customer_number(sales, customer, users):
    client = client_for(sales)
    options = client.get(reverse("activities:follow_up_owners"), {"customer": customer.number}).content.decode()
    assert f'value="{sales.pk}" selected' in options and users[Role.MANAGER].username in options
    assert users[Role.ANALYST].username not in options
    assert "Enter a customer number first" in client.get(reverse("activities:follow_up_owners")).content.decode()


def test_edit_moves_the_reminder_and_can_drop_it(sales, customer):
    follow_up = make_follow_up(customer, sales, due_at=noon(1))
    client = client_for(sales)
    url = reverse("activities:follow_up", args=[follow_up.pk])
    form = {
        "title": "改期回访",
        "due_at": noon(2).strftime("%Y-%m-%dT%H:%M"),
        "priority": "urgent",
        "owner": sales.pk,
        "remind_at": (noon(1) - timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M"),
        "notes": "",
    }
    assert client.post(url, form).status_code == 302
    follow_up.refresh_from_db()
    assert (follow_up.title, follow_up.priority, follow_up.due_at) == ("改期回访", "urgent", noon(2))
    assert follow_up.remind_at == noon(2) - timedelta(minutes=60)

    assert (
        client.post(url, {**form, "due_at": noon(2).strftime("%Y-%m-%dT%H:%M"), "no_reminder": "on"}).status_code == 302
    )
    follow_up.refresh_from_db()
    assert follow_up.remind_at is None


def test_complete_with_the_interaction_that_did_it(sales, customer, follow_up):
    call = Interaction.objects.create(customer=customer, kind="call", subject="电话", occurred_at=timezone.now())
    client = client_for(sales)
    page = client.get(reverse("activities:follow_up", args=[follow_up.pk])).content.decode()
    assert "电话" in page
    client.post(reverse("activities:follow_up_complete", args=[follow_up.pk]), {"interaction": call.pk})
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.interaction) == ("done", call)
    page = client.get(reverse("activities:follow_up", args=[follow_up.pk])).content.decode()
    assert "Reopen" in page and "Mark done" not in page


def test_cancel_from_the_follow_up_page(sales, follow_up):
    client_for(sales).post(reverse("activities:follow_up_cancel", args=[follow_up.pk]))
    assert FollowUp.objects.get(pk=follow_up.pk).status == "cancelled"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MANAGER, {"报价回访"}),
        (Role.ADMINISTRATOR, {"报价回访", "外组回访"}),
        (Role.ANALYST, {"报价回访", "外组回访"}),
    ],
)
def test_team_overdue_page_per_role(users, admin_user, follow_up, other_team, role, expected):
    outsider = make_user(Role.SALES, "outsider", other_team)
    theirs = make_customer(admin_user, display_name="外组客户", owner_id=outsider.pk, team_id=other_team.pk)
    make_follow_up(theirs, outsider, title="外组回访", due_at=timezone.now() - timedelta(days=2))
    page = client_for(users[role]).get(reverse("activities:follow_ups_overdue")).content.decode()
    assert {title for title in ("报价回访", "外组回访") if title in page} == expected
    filtered = client_for(users[role]).get(reverse("activities:follow_ups_overdue"), {"owner": outsider.pk})
    assert "报价回访" not in filtered.content.decode()


def test_callback_plans_create_edit_and_run(admin_user, sales, customer):
    customer.value_tier = "vip"
    type(customer).objects.filter(pk=customer.pk).update(value_tier="vip")
    view = saved_view_save(user=admin_user, name="VIP", query="value_tier=vip")
    client = client_for(admin_user)
    form = {
        "name": "VIP 季度回访",
        "saved_view": view.pk,
        "every_days": 90,
        "title": "季度回访",
        "priority": "high",
        "default_owner": admin_user.pk,
        "is_active": "on",
    }
    assert client.post(reverse("activities:callback_plan_create"), form).status_code == 302
    plan = CallbackPlan.objects.get()
    assert (plan.every_days, plan.created_by, plan.saved_view) == (90, admin_user, view)

    response = client.post(reverse("activities:callback_plans_run"), follow=True)
    assert "1 call-back task was created." in response.content.decode()
    assert FollowUp.objects.get(plan=plan).owner == sales
    page = client.get(reverse("activities:callback_plans")).content.decode()
    assert "VIP 季度回访" in page and "季度回访" in page

    client.post(reverse("activities:callback_plan_edit", args=[plan.pk]), {**form, "every_days": 30})
    plan.refresh_from_db()
    assert plan.every_days == 30


def test_a_plan_form_error_is_shown(admin_user):
    view = saved_view_save(user=admin_user, name="VIP", query="value_tier=vip")
    make_plan(admin_user, name="已有")
    form = {"name": "已有", "saved_view": view.pk, "every_days": 7, "title": "回访", "priority": "normal"}
    form["default_owner"] = admin_user.pk
    response = client_for(admin_user).post(reverse("activities:callback_plan_create"), form)
    assert (
        response.status_code == 200 and "There is already a call-back plan with this name." in response.content.decode()
    )


def test_notifications_link_to_their_target_and_are_read(sales, customer, follow_up):
    FollowUp.objects.filter(pk=follow_up.pk).update(remind_at=timezone.now() - timedelta(minutes=1))
    follow_up_reminders_send()
    Notification.objects.create(user=sales, title="其他")
    client = client_for(sales)
    page = client.get(reverse("activities:notifications")).content.decode()
    assert "报价回访" in page and page.count("text-start fw-semibold") == 2

    reminder = Notification.objects.get(title__contains="报价回访")
    response = client.post(reverse("activities:notification_read", args=[reminder.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("activities:follow_up", args=[follow_up.pk])
    assert Notification.objects.get(pk=reminder.pk).read_at is not None
    client.post(reverse("activities:notifications_read_all"))
    assert not Notification.objects.filter(user=sales, read_at__isnull=True).exists()


def test_someone_elses_notification_is_404(users, sales):
    theirs = Notification.objects.create(user=users[Role.MANAGER], title="经理的")
    assert client_for(sales).post(reverse("activities:notification_read", args=[theirs.pk])).status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_navbar_snippet_shows_overdue_and_unread(sales, follow_up, users):
    Notification.objects.create(user=sales, title="新")
    request = RequestFactory().get("/")
    request.user = sales
    html = render_to_string("activities/_navbar.html", request=request)
    assert "My follow-ups" in html and '<span class="badge text-bg-danger" title="Overdue">1</span>' in html
    assert '<span class="badge rounded-pill text-bg-danger">1</span>' in html
    request.user = users[Role.AUDITOR]
    html = render_to_string("activities/_navbar.html", request=request)
    assert "My follow-ups" not in html and "Notifications, 0 unread" in html


def test_plan_tasks_show_as_call_backs_due_today(admin_user, sales, customer):
    type(customer).objects.filter(pk=customer.pk).update(value_tier="vip")
    make_plan(admin_user)
    callback_plans_run()
    follow_up_complete(follow_up=make_follow_up(customer, sales, title="别的"), actor=sales)
    page = client_for(sales).get(reverse("activities:follow_ups")).content.decode()
    assert "VIP 回访" in page and "Call-back" in page
