"""Every read of follow-ups, call-back plans and notifications that pages, the API and the CLI share. A follow-up is
seen only by those who see its customer (DESIGN §3.4)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.accounts.roles import ROLE_PERMISSIONS, ROLE_SCOPE, Perm, Scope, has_perm
from cim.accounts.scopes import team_ancestors, team_parents, user_team_parents
from cim.activities.models import CallbackPlan, FollowUp, Interaction, Notification
from cim.customers.models import Customer
from cim.customers.sharing_selectors import share_recipient_team_ids

Status = FollowUp.Status
TABS = ("today", "overdue", "upcoming", "done")


def _in_scope(follow_ups: QuerySet[FollowUp], user) -> QuerySet[FollowUp]:
    customers = Customer.objects.visible_to(user)
    if customers.query.is_empty():
        return follow_ups.none()
    if not customers.query.has_filters():
        return follow_ups  # every customer: a join would only cost
    return follow_ups.filter(customer__in=customers.values("pk"))


def follow_ups_visible(*, user) -> QuerySet[FollowUp]:
    """Every follow-up of the customers `user` sees, with what lists show."""
    return _in_scope(FollowUp.objects.all(), user).select_related("customer", "owner")


def end_of_today(now: datetime | None = None) -> datetime:
    """The next local midnight: what is due before it is due today."""
    local = timezone.localtime(now)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def my_follow_ups(*, user, tab: str = "today", now: datetime | None = None) -> QuerySet[FollowUp]:
    """The user's own follow-ups on one tab: due today (overdue included), overdue, upcoming, or done (latest
    first)."""
    now = now or timezone.now()
    mine = follow_ups_visible(user=user).filter(owner=user)
    if tab == "done":
        return mine.filter(status=Status.DONE).order_by("-done_at", "-id")
    mine = mine.filter(status=Status.OPEN)
    if tab == "overdue":
        return mine.filter(due_at__lt=now).order_by("due_at", "id")
    if tab == "upcoming":
        return mine.filter(due_at__gte=end_of_today(now)).order_by("due_at", "id")
    return mine.filter(due_at__lt=end_of_today(now)).order_by("due_at", "id")


def my_follow_up_tab_counts(*, user, now: datetime | None = None) -> dict[str, int]:
    """How many open follow-ups of the user each open tab holds, in one query."""
    now = now or timezone.now()
    mine = _in_scope(FollowUp.objects.filter(owner=user, status=Status.OPEN), user)
    return mine.aggregate(
        today=Count("pk", filter=Q(due_at__lt=end_of_today(now))),
        overdue=Count("pk", filter=Q(due_at__lt=now)),
        upcoming=Count("pk", filter=Q(due_at__gte=end_of_today(now))),
    )


def team_overdue(*, user, owner_id: int | None = None, now: datetime | None = None) -> QuerySet[FollowUp]:
    """Open follow-ups past their due time on the customers the user sees: a manager's team's, everyone's for
    those who see every customer. Oldest first."""
    if not has_perm(user, Perm.PERFORMANCE_VIEW):
        return FollowUp.objects.none()
    overdue = follow_ups_visible(user=user).filter(status=Status.OPEN, due_at__lt=now or timezone.now())
    if owner_id is not None:
        overdue = overdue.filter(owner_id=owner_id)
    return overdue.order_by("due_at", "id")


def overdue_by_owner(*, user, now: datetime | None = None) -> list[dict]:
    """The team's overdue follow-ups counted per owner, most first: [{owner_id, owner, count, oldest}]."""
    rows = (
        team_overdue(user=user, now=now)
        .order_by()
        .values("owner_id")
        .annotate(count=Count("pk"), oldest=Min("due_at"))
        .order_by("-count", "owner_id")
    )
    owners = {u.pk: u for u in User.objects.filter(pk__in=[r["owner_id"] for r in rows])}
    return [{**row, "owner": owners[row["owner_id"]]} for row in rows]


def customer_follow_up_list(*, customer: Customer, status: str | None = Status.OPEN) -> QuerySet[FollowUp]:
    """A customer's follow-ups (the caller has checked the customer is in scope); open ones by due time."""
    follow_ups = FollowUp.objects.filter(customer=customer).select_related("customer", "owner")
    if status:
        follow_ups = follow_ups.filter(status=status)
    return follow_ups.order_by("due_at", "id") if status == Status.OPEN else follow_ups.order_by("-due_at", "-id")


def follow_up_get(*, user, pk: int) -> FollowUp:
    """One follow-up of a customer in the user's scope, or Http404."""
    follow_up = follow_ups_visible(user=user).select_related("plan", "interaction", "created_by").filter(pk=pk).first()
    if follow_up is None:
        raise Http404(_("No follow-up with id %(id)s.") % {"id": pk})
    return follow_up


def follow_up_owners(*, customer: Customer, parents: dict[int, int | None] | None = None) -> QuerySet[User]:
    """Active staff who may own a follow-up of `customer`: their role logs activities and they see the customer.

    The same rule as `Customer.objects.visible_to` (scope and shares), turned around to find users from a customer
    in one query. `parents`: the team tree (`team_parents()`), when the caller has it already.
    """
    roles = [role for role, perms in ROLE_PERMISSIONS.items() if Perm.ACTIVITY_LOG in perms]
    sees = Q(role__in=[r for r in roles if ROLE_SCOPE.get(r) == Scope.ALL])
    if customer.owner_id:
        sees |= Q(pk=customer.owner_id)
    parents = team_parents() if parents is None else parents
    teams = {customer.team_id, customer.owner.team_id if customer.owner_id else None} - {None}
    if teams:
        sees |= Q(role__in=[r for r in roles if ROLE_SCOPE.get(r) == Scope.TEAM], team_id__in=teams)
        departments = team_ancestors(teams, parents)
        sees |= Q(role__in=[r for r in roles if ROLE_SCOPE.get(r) == Scope.DEPARTMENT], team_id__in=departments)
    if recipients := share_recipient_team_ids(customer, parents):  # teams the customer is shared with
        sees |= Q(team_id__in=recipients)
    return User.objects.filter(sees, is_active=True, role__in=roles).order_by("username")


def follow_up_default_owner(*, customer: Customer, actor) -> User | None:
    """Who gets a new follow-up when nobody is named: the customer's owner when they may, else the actor."""
    if customer.owner_id and follow_up_owners(customer=customer).filter(pk=customer.owner_id).exists():
        return customer.owner
    return actor


def customer_interactions_recent(*, customer: Customer, limit: int = 10) -> QuerySet[Interaction]:
    """The customer's latest interactions: what a completed follow-up may name as the one that did it."""
    return Interaction.objects.filter(customer=customer).order_by("-occurred_at", "-id")[:limit]


@dataclass(frozen=True)
class CustomerFollowUps:
    """What the customer page's follow-up card shows."""

    open: list[FollowUp]
    owners: list[User]
    default_owner_id: int | None
    can_add: bool
    now: datetime


def customer_follow_ups(*, user, customer: Customer, has_follow_ups: bool = True) -> CustomerFollowUps:
    """The open follow-ups of a customer in the user's scope, and what the quick "add" form offers.
    `has_follow_ups=False`: the caller knows the customer has none."""
    can_add = has_perm(user, Perm.ACTIVITY_LOG) and not customer.is_archived
    owners = list(follow_up_owners(customer=customer, parents=user_team_parents(user))) if can_add else []
    default = customer.owner_id if customer.owner_id in {owner.pk for owner in owners} else user.pk
    return CustomerFollowUps(
        open=list(customer_follow_up_list(customer=customer)) if has_follow_ups else [],
        owners=owners,
        default_owner_id=default if can_add else None,
        can_add=can_add,
        now=timezone.now(),
    )


@dataclass(frozen=True)
class NavbarCounts:
    open: int
    overdue: int
    unread: int


def navbar_counts(*, user, now: datetime | None = None) -> NavbarCounts:
    """The user's open and overdue follow-ups (on the owner index) and unread notifications (on the user index).
    Every page pays it, so the customer scope is written into the query once, not once per count."""
    mine = _in_scope(FollowUp.objects.filter(owner=user, status=Status.OPEN), user)
    counts = mine.aggregate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now or timezone.now())))
    unread = Notification.objects.filter(user=user, read_at__isnull=True).count()
    return NavbarCounts(open=counts["open"], overdue=counts["overdue"], unread=unread)


def notification_list(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's own notifications, newest first."""
    notifications = Notification.objects.filter(user=user)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-created_at", "-id")


def notification_get(*, user, pk: int) -> Notification:
    notification = notification_list(user=user).filter(pk=pk).first()
    if notification is None:
        raise Http404(_("No notification with id %(id)s.") % {"id": pk})
    return notification


def callback_plan_list() -> QuerySet[CallbackPlan]:
    """Every call-back plan, with its open follow-ups counted."""
    return (
        CallbackPlan.objects.select_related("saved_view", "default_owner", "created_by")
        .annotate(open_count=Count("follow_ups", filter=Q(follow_ups__status=Status.OPEN)))
        .order_by("name")
    )


def callback_plan_get(*, pk: int) -> CallbackPlan:
    plan = callback_plan_list().filter(pk=pk).first()
    if plan is None:
        raise Http404(_("No call-back plan with id %(id)s.") % {"id": pk})
    return plan


def callback_plan_owners() -> QuerySet[User]:
    """Who may be a plan's default owner: active staff whose role logs activities."""
    roles = [role for role, perms in ROLE_PERMISSIONS.items() if Perm.ACTIVITY_LOG in perms]
    return User.objects.filter(is_active=True, role__in=roles).order_by("username")
