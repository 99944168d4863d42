"""Follow-ups: the services and their audit, reminders sent once, call-back plans that recur and stay idempotent,
the reads scoped per role, the timeline source and the periodic jobs."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.core.exceptions import ValidationError
from django.http import Http404
from django.test import RequestFactory
from django.utils import timezone, translation

from cim.accounts.models import User
from cim.accounts.roles import Perm, Role, has_perm
from cim.activities import follow_ups as services
from cim.activities.context_processors import follow_ups as follow_ups_context
from cim.activities.follow_up_selectors import (
    follow_up_get,
    follow_up_owners,
    my_follow_up_tab_counts,
    my_follow_ups,
    navbar_counts,
    overdue_by_owner,
    team_overdue,
)
from cim.activities.follow_ups import (
    callback_plan_update,
    callback_plans_run,
    follow_up_cancel,
    follow_up_complete,
    follow_up_reminders_send,
    follow_up_reopen,
    follow_up_update,
    notification_read,
    notifications_read_all,
)
from cim.activities.models import FollowUp, Interaction, Notification
from cim.activities.tasks import callback_plans, follow_up_reminders
from cim.activities.tests.follow_up_factories import make_follow_up, make_plan, make_user, noon
from cim.activities.timeline import timeline_page
from cim.audit.models import AuditEvent
from cim.core.schedule import PERIODIC, periodic_enqueue_due
from cim.customers.models import Customer, SavedView
from cim.customers.saved_views import saved_view_save
from cim.customers.services import PermissionDenied, customer_archive
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def sales(users):
    return users[Role.SALES]


@pytest.fixture
def manager(users):
    return users[Role.MANAGER]


@pytest.fixture
def customer(admin_user, sales, team):
    return make_customer(admin_user, display_name="王五", owner_id=sales.pk, team_id=team.pk)


def actions(follow_up) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="activities.followup", target_id=str(follow_up.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


# --- create and change


def test_create_defaults_owner_reminder_and_audit(customer, manager, sales):
    due = noon(2)
    follow_up = make_follow_up(customer, manager, due_at=due, title="  报价回访 ", priority="high")
    assert (follow_up.owner, follow_up.title, follow_up.priority) == (sales, "报价回访", "high")
    assert follow_up.remind_at == due - timedelta(minutes=60)
    assert follow_up.created_by == manager and follow_up.status == "open"
    assert actions(follow_up) == ["follow_up.create"]
    # The customer's owner was given it by someone else: they hear of it.
    notification = Notification.objects.get(user=sales)
    assert "报价回访" in notification.title and notification.url == f"/activities/follow-ups/{follow_up.pk}/"


def test_the_actor_owns_it_when_the_customers_owner_may_not(admin_user, users, team):
    analyst = users[Role.ANALYST]
    customer = make_customer(admin_user, owner_id=analyst.pk, team_id=team.pk)
    follow_up = make_follow_up(customer, users[Role.SERVICE])
    assert follow_up.owner == users[Role.SERVICE]
    assert not Notification.objects.exists()  # nobody else was given anything


def test_remind_before_comes_from_the_setting(settings, customer, sales):
    settings.CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES = 15
    follow_up = make_follow_up(customer, sales, due_at=noon(1))
    assert follow_up.remind_at == noon(1) - timedelta(minutes=15)


def test_no_reminder_a_chosen_one_and_one_after_due(customer, sales):
    assert make_follow_up(customer, sales, remind_at=None).remind_at is None
    chosen = noon(1) - timedelta(hours=3)
    assert make_follow_up(customer, sales, due_at=noon(1), remind_at=chosen).remind_at == chosen
    with pytest.raises(ValidationError) as error:
        make_follow_up(customer, sales, due_at=noon(1), remind_at=noon(2))
    assert "remind_at" in error.value.message_dict


def test_a_naive_due_time_is_read_in_the_installation_time_zone(customer, sales):
    follow_up = make_follow_up(customer, sales, due_at=noon(1).replace(tzinfo=None))
    assert follow_up.due_at == noon(1)


@pytest.mark.parametrize(
    ("owner_key", "allowed"),
    [("sales", True), ("manager", True), ("administrator", True), ("analyst", False), ("outsider", False)],
)
def test_only_staff_who_log_and_see_the_customer_may_own_it(users, customer, sales, other_team, owner_key, allowed):
    owner = make_user(Role.SALES, "outsider", other_team) if owner_key == "outsider" else users[owner_key]
    if allowed:
        assert make_follow_up(customer, sales, owner=owner).owner == owner
        return
    with pytest.raises(ValidationError) as error:
        make_follow_up(customer, sales, owner=owner)
    assert "owner" in error.value.message_dict
    assert not FollowUp.objects.exists()


def test_owner_choices_agree_with_the_customer_scope(admin_user, team, other_team, users):
    """`follow_up_owners` turns `visible_to` around; for every kind of customer, both must name the same people."""
    me = make_user(Role.SALES, "me", team)
    outsider = make_user(Role.SALES, "outsider", other_team)
    make_user(Role.MANAGER, "other-manager", other_team)
    make_user(Role.SERVICE, "teamless-service", None)
    gone = make_user(Role.SALES, "gone", team)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    customers = [
        make_customer(admin_user, owner_id=me.pk, team_id=team.pk),
        make_customer(admin_user, owner_id=me.pk, team_id=other_team.pk),
        make_customer(admin_user, owner_id=outsider.pk, team_id=None),
        make_customer(admin_user, owner_id=None, team_id=team.pk),
        make_customer(admin_user, owner_id=users[Role.ANALYST].pk, team_id=None),
    ]
    for customer in customers:
        customer = Customer.objects.select_related("owner").get(pk=customer.pk)
        expected = {
            user.pk
            for user in User.objects.all()
            if user.is_active
            and has_perm(user, Perm.ACTIVITY_LOG)
            and Customer.objects.visible_to(user).filter(pk=customer.pk).exists()
        }
        assert set(follow_up_owners(customer=customer).values_list("pk", flat=True)) == expected


def test_roles_that_do_not_log_activities_cannot_create(users, customer):
    with pytest.raises(PermissionDenied):
        make_follow_up(customer, users[Role.ANALYST])
    assert not FollowUp.objects.exists()


def test_no_follow_ups_on_archived_customers(customer, admin_user, sales):
    customer_archive(customer=customer, actor=admin_user)
    with pytest.raises(ValidationError):
        make_follow_up(customer, sales)


def test_update_moves_the_reminder_with_the_due_time_and_arms_it_again(customer, sales):
    follow_up = make_follow_up(customer, sales, due_at=timezone.now() + timedelta(minutes=30))
    assert follow_up_reminders_send().follow_ups == 1
    follow_up.refresh_from_db()
    old_due, old_remind = follow_up.due_at, follow_up.remind_at
    follow_up_update(follow_up=follow_up, actor=sales, due_at=old_due + timedelta(days=1))
    follow_up.refresh_from_db()
    assert follow_up.remind_at == old_remind + timedelta(days=1) and follow_up.reminded_at is None
    event = AuditEvent.objects.filter(action="follow_up.update").get()
    assert {c.field for c in event.changes.all()} == {"due_at", "remind_at"}


def test_update_of_nothing_records_nothing(customer, sales):
    follow_up = make_follow_up(customer, sales, title="回访")
    follow_up_update(follow_up=follow_up, actor=sales, title=" 回访 ")
    assert actions(follow_up) == ["follow_up.create"]


def test_update_owner_checks_and_notifies(customer, sales, manager, users):
    follow_up = make_follow_up(customer, sales)
    with pytest.raises(ValidationError):
        follow_up_update(follow_up=follow_up, actor=sales, owner=users[Role.AUDITOR])
    follow_up_update(follow_up=follow_up, actor=sales, owner=manager, remind_at=None)
    follow_up.refresh_from_db()
    assert follow_up.owner == manager and follow_up.remind_at is None
    assert Notification.objects.filter(user=manager).count() == 1


def test_only_open_follow_ups_change(customer, sales):
    follow_up = follow_up_complete(follow_up=make_follow_up(customer, sales), actor=sales)
    with pytest.raises(ValidationError):
        follow_up_update(follow_up=follow_up, actor=sales, title="新")


def test_complete_with_its_interaction_once_then_reopen(customer, sales, admin_user):
    follow_up = make_follow_up(customer, sales)
    call = Interaction.objects.create(customer=customer, kind="call", occurred_at=timezone.now(), logged_by=sales)
    elsewhere = make_customer(admin_user, owner_id=sales.pk)
    other_call = Interaction.objects.create(customer=elsewhere, kind="call", occurred_at=timezone.now())
    with pytest.raises(ValidationError):
        follow_up_complete(follow_up=follow_up, actor=sales, interaction=other_call)

    follow_up_complete(follow_up=follow_up, actor=sales, interaction=call)
    follow_up_complete(follow_up=follow_up, actor=sales)  # a second click changes nothing
    assert (follow_up.status, follow_up.interaction) == ("done", call) and follow_up.done_at is not None
    assert actions(follow_up) == ["follow_up.create", "follow_up.complete"]

    follow_up_reopen(follow_up=follow_up, actor=sales)
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.done_at, follow_up.interaction) == ("open", None, None)
    assert actions(follow_up)[-1] == "follow_up.reopen"


def test_cancelled_is_not_completed_and_done_is_not_cancelled(customer, sales):
    cancelled = follow_up_cancel(follow_up=make_follow_up(customer, sales), actor=sales)
    with pytest.raises(ValidationError):
        follow_up_complete(follow_up=cancelled, actor=sales)
    done = follow_up_complete(follow_up=make_follow_up(customer, sales), actor=sales)
    with pytest.raises(ValidationError):
        follow_up_cancel(follow_up=done, actor=sales)
    assert FollowUp.objects.get(pk=cancelled.pk).status == "cancelled"
    assert FollowUp.objects.get(pk=done.pk).status == "done"


# --- reminders


@pytest.fixture
def due_soon(admin_user, sales, manager, team):
    """Two follow-ups of sales and one of the manager due within the hour; others not to be reminded."""
    sales.email, manager.email = "sales@example.com", "manager@example.com"
    User.objects.filter(pk=sales.pk).update(email=sales.email)
    User.objects.filter(pk=manager.pk).update(email=manager.email)
    customer = make_customer(admin_user, display_name="赵六", owner_id=sales.pk, team_id=team.pk)
    soon = timezone.now() + timedelta(minutes=30)
    reminded = [
        make_follow_up(customer, sales, due_at=soon, title="第一"),
        make_follow_up(customer, sales, due_at=soon + timedelta(minutes=5), title="第二"),
        make_follow_up(customer, sales, due_at=soon, title="经理的", owner=manager),
    ]
    make_follow_up(customer, sales, due_at=timezone.now() + timedelta(days=2), title="以后")
    make_follow_up(customer, sales, due_at=soon, title="不提醒", remind_at=None)
    follow_up_complete(follow_up=make_follow_up(customer, sales, due_at=soon, title="做完了"), actor=sales)
    Notification.objects.all().delete()
    return reminded


def test_reminders_go_once_per_owner_in_the_app_and_by_email(
    due_soon, sales, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = follow_up_reminders_send()
    assert (run.follow_ups, run.people, run.emails) == (3, 2, 2)
    assert set(FollowUp.objects.filter(reminded_at__isnull=False).values_list("title", flat=True)) == {
        "第一",
        "第二",
        "经理的",
    }
    mine = Notification.objects.get(user=sales)
    assert "2" in mine.title and mine.url == "/activities/follow-ups/?tab=today"
    theirs = Notification.objects.get(user=manager)
    assert "经理的" in theirs.title and theirs.url == f"/activities/follow-ups/{due_soon[2].pk}/"
    by_address = {message.to[0]: message for message in mail.outbox}
    assert set(by_address) == {"sales@example.com", "manager@example.com"}
    body = by_address["sales@example.com"].body
    assert (
        "第一" in body and "第二" in body and "赵六" in body and "http://127.0.0.1:8000/activities/follow-ups/" in body
    )
    assert AuditEvent.objects.filter(action="follow_up.remind").count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        again = follow_up_reminders_send()
    assert again.follow_ups == 0 and Notification.objects.count() == 2 and len(mail.outbox) == 2


def test_a_reminder_claimed_by_another_worker_is_not_sent_again(due_soon):
    """The claim is a conditional UPDATE: whichever worker marks a row first sends it; the other skips it."""
    first, second, _other = due_soon
    now = timezone.now()
    assert services._claim([first.pk], now) == [first.pk]
    assert services._claim([first.pk, second.pk], now) == [second.pk]
    assert follow_up_reminders_send().follow_ups == 1


def test_the_periodic_job_run_twice_reminds_once(due_soon, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert follow_up_reminders.call()["follow_ups"] == 3
        assert follow_up_reminders.call()["follow_ups"] == 0
    assert len(mail.outbox) == 2


def test_a_failing_mail_server_keeps_the_reminders_in_the_app(due_soon, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens: the connection is refused
    with django_capture_on_commit_callbacks(execute=True):
        run = follow_up_reminders_send()
    assert run.follow_ups == 3 and Notification.objects.count() == 2
    assert FollowUp.objects.filter(reminded_at__isnull=True, title="第一").count() == 0


def test_no_email_without_an_address(due_soon, sales, django_capture_on_commit_callbacks):
    User.objects.filter(pk=sales.pk).update(email="")
    with django_capture_on_commit_callbacks(execute=True):
        assert follow_up_reminders_send().emails == 1
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]


# --- notifications


def test_notifications_read_one_and_all(sales, manager):
    first = Notification.objects.create(user=sales, title="一")
    Notification.objects.create(user=sales, title="二")
    theirs = Notification.objects.create(user=manager, title="三")
    with pytest.raises(PermissionDenied):
        notification_read(notification=theirs, actor=sales)
    assert notification_read(notification=first, actor=sales).read_at is not None
    assert notifications_read_all(actor=sales) == 1
    assert notifications_read_all(actor=sales) == 0
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert list(AuditEvent.objects.filter(actor=sales).order_by("id").values_list("action", flat=True))[-2:] == [
        "notification.read",
        "notification.read_all",
    ]


# --- call-back plans


@pytest.fixture
def segment(admin_user, sales, team):
    """VIP customers: owned by sales, by nobody, by someone deactivated; plus one archived and one not VIP."""
    gone = make_user(Role.SALES, "gone", team)
    people = {
        "owned": make_customer(admin_user, display_name="甲", value_tier="vip", owner_id=sales.pk, team_id=team.pk),
        "ownerless": make_customer(admin_user, display_name="乙", value_tier="vip", team_id=team.pk),
        "orphaned": make_customer(admin_user, display_name="丙", value_tier="vip", owner_id=gone.pk),
        "archived": make_customer(admin_user, display_name="丁", value_tier="vip", owner_id=sales.pk),
        "other": make_customer(admin_user, display_name="戊", value_tier="low", owner_id=sales.pk),
    }
    Customer.objects.filter(pk=people["ownerless"].pk).update(owner=None)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    customer_archive(customer=people["archived"], actor=admin_user)
    return people


def test_a_plan_gives_each_customer_of_its_view_one_task_and_is_idempotent(admin_user, sales, manager, segment):
    plan = make_plan(admin_user, default_owner=manager, priority="high")
    [run] = callback_plans_run()
    assert (run.created, run.error) == (3, "")
    made = {f.customer_id: f for f in FollowUp.objects.filter(plan=plan)}
    assert set(made) == {segment["owned"].pk, segment["ownerless"].pk, segment["orphaned"].pk}
    assert made[segment["owned"].pk].owner == sales
    assert made[segment["ownerless"].pk].owner == manager == made[segment["orphaned"].pk].owner
    task = made[segment["owned"].pk]
    assert (task.title, task.priority, task.status) == ("VIP 回访", "high", "open")
    assert timezone.localtime(task.due_at).date() == timezone.localdate()
    assert AuditEvent.objects.filter(action="follow_up.create", note=f"callback_plan:{plan.pk}").count() == 3
    plan.refresh_from_db()
    assert plan.last_run_at is not None

    assert callback_plans_run()[0].created == 0
    assert FollowUp.objects.filter(plan=plan).count() == 3


def test_a_plan_recurs_every_n_days_after_the_last_task(admin_user, sales, segment):
    plan = make_plan(admin_user, every_days=30)
    callback_plans_run()
    done = FollowUp.objects.get(plan=plan, customer=segment["owned"])
    follow_up_complete(follow_up=done, actor=sales)
    assert callback_plans_run()[0].created == 0  # done, but made less than 30 days ago

    FollowUp.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(days=29))
    assert callback_plans_run()[0].created == 0
    FollowUp.objects.filter(plan=plan).update(created_at=timezone.now() - timedelta(days=31))
    # The two others are still open: only the done one is due again.
    [run] = callback_plans_run()
    assert run.created == 1
    assert FollowUp.objects.filter(plan=plan, customer=segment["owned"], status="open").count() == 1


def test_the_periodic_job_run_twice_creates_once(admin_user, segment):
    make_plan(admin_user)
    assert callback_plans.call()[0]["created"] == 3
    assert callback_plans.call()[0]["created"] == 0
    assert FollowUp.objects.count() == 3


def test_a_plan_sees_the_customers_its_creator_sees(admin_user, manager, segment):
    plan = make_plan(admin_user, default_owner=manager)
    own = make_customer(admin_user, display_name="己", value_tier="vip")
    User.objects.filter(pk=admin_user.pk).update(role=Role.SALES)  # now sees only their own customers
    assert callback_plans_run()[0].created == 1
    assert FollowUp.objects.get(plan=plan).customer == own
    FollowUp.objects.all().delete()
    User.objects.filter(pk=admin_user.pk).update(is_active=False)
    [run] = callback_plans_run()
    assert run.created == 0 and "creator" in run.error
    assert not FollowUp.objects.filter(plan=plan).exists()


def test_a_plan_leaves_out_archived_customers_even_when_its_view_lists_them(admin_user, segment):
    plan = make_plan(admin_user, query="value_tier=vip&status=any")
    assert callback_plans_run()[0].created == 3
    assert not FollowUp.objects.filter(plan=plan, customer=segment["archived"]).exists()


def test_a_plan_whose_view_no_longer_parses_does_nothing_rather_than_everything(admin_user, segment):
    plan = make_plan(admin_user)
    SavedView.objects.filter(pk=plan.saved_view_id).update(query="value_tier=platinum")
    [run] = callback_plans_run()
    assert run.created == 0 and run.error
    assert not FollowUp.objects.exists()


def test_inactive_plans_do_not_run(admin_user, segment):
    plan = make_plan(admin_user)
    callback_plan_update(plan=plan, actor=admin_user, is_active=False)
    assert callback_plans_run() == []
    event = AuditEvent.objects.get(action="callback_plan.update")
    assert [(c.field, c.old_value, c.new_value) for c in event.changes.all()] == [("is_active", "True", "False")]


def test_plan_tasks_are_reminded_in_one_message_per_owner(admin_user, sales, segment):
    make_plan(admin_user)
    callback_plans_run()
    run = follow_up_reminders_send()
    assert (run.follow_ups, run.people) == (3, 2)  # sales' one, and the default owner's (the admin) two
    assert my_follow_up_tab_counts(user=sales)["today"] == 1


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"every_days": 0}, "every_days"),
        ({"name": "VIP 回访"}, "name"),
        ({"title": " "}, "title"),
        ({"default_owner": "auditor"}, "default_owner"),
        ({"saved_view": "private"}, "saved_view"),
        ({"saved_view": "invalid"}, "saved_view"),
    ],
)
def test_plan_validation(admin_user, users, fields, error_field):
    existing = make_plan(admin_user)
    values = {
        "name": "新计划",
        "saved_view": existing.saved_view,
        "every_days": 7,
        "title": "回访",
        "actor": admin_user,
    }
    values.update(fields)
    if fields.get("default_owner") == "auditor":
        values["default_owner"] = users[Role.AUDITOR]
    if fields.get("saved_view") == "private":
        values["saved_view"] = saved_view_save(user=users[Role.SALES], name="我的", query="value_tier=vip")
    if fields.get("saved_view") == "invalid":
        values["saved_view"] = saved_view_save(user=admin_user, name="坏的", query="region=mars")
    with pytest.raises(ValidationError) as error:
        services.callback_plan_create(**values)
    assert error_field in error.value.message_dict


def test_only_administrators_plan_call_backs(users, admin_user):
    with pytest.raises(PermissionDenied):
        make_plan(users[Role.MANAGER])
    plan = make_plan(admin_user)
    with pytest.raises(PermissionDenied):
        callback_plans_run(actor=users[Role.MANAGER])
    with pytest.raises(PermissionDenied):
        callback_plan_update(plan=plan, actor=users[Role.MANAGER], every_days=3)


# --- reads


def test_my_follow_ups_by_tab(customer, sales):
    now = noon()
    late = make_follow_up(customer, sales, due_at=now - timedelta(days=1), title="逾期")
    today = make_follow_up(customer, sales, due_at=now + timedelta(hours=2), title="今天")
    later = make_follow_up(customer, sales, due_at=now + timedelta(days=2), title="以后")
    done = follow_up_complete(follow_up=make_follow_up(customer, sales, title="完成"), actor=sales)

    def tab(name):
        return list(my_follow_ups(user=sales, tab=name, now=now))

    assert tab("today") == [late, today]
    assert tab("overdue") == [late]
    assert tab("upcoming") == [later]
    assert tab("done") == [done]
    assert my_follow_up_tab_counts(user=sales, now=now) == {"today": 2, "overdue": 1, "upcoming": 1}


@pytest.fixture
def overdue_world(admin_user, users, team, other_team):
    """Overdue follow-ups of two teams, and one not yet due."""
    outsider = make_user(Role.SALES, "outsider", other_team)
    ours = make_customer(admin_user, display_name="我们的", owner_id=users[Role.SALES].pk, team_id=team.pk)
    theirs = make_customer(admin_user, display_name="他们的", owner_id=outsider.pk, team_id=other_team.pk)
    yesterday = timezone.now() - timedelta(days=1)
    return {
        "ours": make_follow_up(ours, users[Role.SALES], due_at=yesterday),
        "ours_too": make_follow_up(ours, users[Role.SALES], due_at=yesterday, owner=users[Role.MANAGER]),
        "theirs": make_follow_up(theirs, outsider, due_at=yesterday - timedelta(days=1)),
        "theirs_too": make_follow_up(theirs, outsider, due_at=yesterday),
        "not_yet": make_follow_up(ours, users[Role.SALES], due_at=timezone.now() + timedelta(hours=1)),
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.ADMINISTRATOR, {"theirs", "theirs_too", "ours", "ours_too"}),
        (Role.ANALYST, {"theirs", "theirs_too", "ours", "ours_too"}),
        (Role.MANAGER, {"ours", "ours_too"}),
        (Role.SALES, set()),
        (Role.SERVICE, set()),
        (Role.AUDITOR, set()),
    ],
)
def test_team_overdue_is_scoped_per_role(users, overdue_world, role, expected):
    seen = set(team_overdue(user=users[role]).values_list("pk", flat=True))
    assert seen == {overdue_world[key].pk for key in expected}


def test_overdue_by_owner_counts_and_orders(users, overdue_world):
    rows = overdue_by_owner(user=users[Role.ADMINISTRATOR])
    assert [(row["owner"].username, row["count"]) for row in rows] == [
        ("outsider", 2),
        ("manager-user", 1),
        ("sales-user", 1),
    ]
    assert rows[0]["oldest"] == overdue_world["theirs"].due_at
    assert [row["owner"].username for row in overdue_by_owner(user=users[Role.MANAGER])] == [
        "manager-user",
        "sales-user",
    ]


def test_follow_ups_outside_the_scope_are_not_found(users, overdue_world, other_team):
    with pytest.raises(Http404):
        follow_up_get(user=users[Role.SALES], pk=overdue_world["theirs"].pk)
    assert follow_up_get(user=users[Role.MANAGER], pk=overdue_world["ours"].pk) == overdue_world["ours"]


def test_my_follow_ups_of_a_customer_no_longer_mine_are_hidden(admin_user, users, overdue_world):
    sales = users[Role.SALES]
    assert navbar_counts(user=sales).open == 2
    Customer.objects.filter(pk=overdue_world["ours"].customer_id).update(owner=admin_user)
    assert navbar_counts(user=sales).open == 0


def test_navbar_counts_take_two_queries_of_their_own(users, overdue_world, django_assert_num_queries):
    sales = users[Role.SALES]
    Notification.objects.create(user=sales, title="新")
    Notification.objects.create(user=sales, title="旧", read_at=timezone.now())
    # Follow-ups and notifications, whether the team receives shares (once per page, see cim.core.context), and the
    # team tree, read once per user object.
    with django_assert_num_queries(4):
        counts = navbar_counts(user=sales)
    with django_assert_num_queries(3):
        navbar_counts(user=sales)
    assert (counts.open, counts.overdue, counts.unread) == (2, 1, 1)


def test_the_context_processor_counts_lazily_and_not_for_visitors(users, django_assert_num_queries):
    request = RequestFactory().get("/")
    request.user = users[Role.SALES]
    with django_assert_num_queries(0):
        context = follow_ups_context(request)
    with django_assert_num_queries(4):  # follow-ups, notifications, the team tree and whether it receives shares
        assert context["follow_up_counts"].overdue == 0
    request.user = AnonymousUser()
    assert follow_ups_context(request) == {}


# --- timeline and schedule


def test_follow_ups_on_the_customer_timeline(customer, sales):
    first = make_follow_up(customer, sales, title="第一次", due_at=timezone.now() - timedelta(hours=1))
    second = make_follow_up(customer, sales, title="第二次", priority="urgent")
    follow_up_complete(follow_up=second, actor=sales)
    FollowUp.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=1))

    page = timeline_page(customer_id=customer.pk, kinds=["follow_up"], limit=1)
    rest = timeline_page(customer_id=customer.pk, kinds=["follow_up"], before=page.next_cursor, limit=5)
    [entry] = page.entries
    assert (entry.kind, entry.key, entry.title, list(entry.badges)) == (
        "follow_up",
        second.pk,
        "第二次",
        ["Done", "Urgent"],
    )
    assert entry.url == f"/activities/follow-ups/{second.pk}/" and entry.actor == str(sales)
    assert entry.detail.startswith("Due ") and str(sales) in entry.detail
    assert [(e.key, list(e.badges)) for e in rest.entries] == [(first.pk, ["Open", "Overdue"])]
    assert rest.next_cursor is None


def test_the_jobs_are_scheduled_every_minute_and_every_hour():
    periodic_enqueue_due()
    every = {name.rsplit(".", 1)[-1]: job.every for name, job in PERIODIC.items()}
    assert every["follow_up_reminders"] == timedelta(minutes=1)
    assert every["callback_plans"] == timedelta(hours=1)
