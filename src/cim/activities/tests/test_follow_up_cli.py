"""`cim followups remind|callbacks|list`: the worker's jobs on demand, and a user's open follow-ups for scripts."""

import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from cim.accounts.models import User
from cim.accounts.roles import Role
from cim.activities.models import FollowUp, Notification
from cim.activities.tests.follow_up_factories import make_follow_up, make_plan, noon
from cim.customers.models import Customer, SavedView
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = io.StringIO()
    call_command("followups", *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def text(*args) -> str:
    out = io.StringIO()
    call_command("followups", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def sales(users):
    User.objects.filter(pk=users[Role.SALES].pk).update(email="sales@example.com")
    return User.objects.get(pk=users[Role.SALES].pk)


@pytest.fixture
def customer(admin_user, sales, team):
    return make_customer(admin_user, display_name="王五", owner_id=sales.pk, team_id=team.pk, value_tier="vip")


def test_remind_sends_the_due_reminders_once(customer, sales, django_capture_on_commit_callbacks):
    make_follow_up(customer, sales, due_at=timezone.now() + timedelta(minutes=10))
    make_follow_up(customer, sales, due_at=timezone.now() + timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert run("remind") == {"follow_ups": 1, "people": 1, "emails": 1}
        assert run("remind") == {"follow_ups": 0, "people": 0, "emails": 0}
    assert len(mail.outbox) == 1 and Notification.objects.filter(user=sales).count() == 1


def test_callbacks_runs_the_plans_once(admin_user, customer):
    plan = make_plan(admin_user)
    first = run("callbacks")
    assert first["created"] == 1 and first["plans"] == [{"id": plan.pk, "name": plan.name, "created": 1, "error": ""}]
    assert run("callbacks")["created"] == 0
    assert FollowUp.objects.filter(plan=plan, customer=customer).count() == 1


def test_callbacks_fails_loudly_when_a_plan_cannot_run(admin_user, customer):
    plan = make_plan(admin_user)
    SavedView.objects.filter(pk=plan.saved_view_id).update(query="region=mars")
    with pytest.raises(CommandError, match="could not run"):
        text("callbacks")
    assert not FollowUp.objects.exists()


def test_list_a_users_open_and_overdue_follow_ups(customer, sales):
    late = make_follow_up(customer, sales, title="逾期", due_at=timezone.now() - timedelta(hours=2))
    make_follow_up(customer, sales, title="明天", due_at=noon(1))
    report = run("list", "--user", sales.username)
    assert [(f["title"], f["overdue"], f["customer"]) for f in report["follow_ups"]] == [
        ("逾期", True, customer.number),
        ("明天", False, customer.number),
    ]
    assert report["overdue"] == 1
    overdue = run("list", "--user", sales.username, "--overdue")
    assert [f["id"] for f in overdue["follow_ups"]] == [late.pk]
    output = text("list", "--user", sales.username)
    assert "! " in output and "逾期" in output and "2 open follow-up(s) for “sales-user”, 1 overdue." in output


def test_list_stays_within_the_users_scope(admin_user, customer, sales):
    make_follow_up(customer, sales)
    Customer.objects.filter(pk=customer.pk).update(owner=admin_user)
    assert run("list", "--user", sales.username)["follow_ups"] == []


def test_list_of_an_unknown_user_fails():
    with pytest.raises(CommandError, match="No user named"):
        text("list", "--user", "nobody")
