"""Reads of shares (信息共享): which customers a team receives, and who shared what, why and until when.

A share widens record scope only: `Customer.objects.visible_to` adds the customers shared with the user's team,
while the role's permissions and field masking (cim.privacy.masking) apply to them unchanged. Expiry needs no
job: every read compares the end date with now.
"""

from typing import Literal

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import Field

from cim.accounts.models import Team
from cim.accounts.roles import Role, Scope, scope_of
from cim.accounts.scopes import department_ids, team_descendants
from cim.core.context import memoized
from cim.customers.models import Customer, Share
from cim.customers.numbering import normalize_number
from cim.customers.schemas import MAX_ID
from cim.segments.models import SegmentMember

NOTHING = Q(pk__in=[])


def shares_active(now=None) -> QuerySet[Share]:
    """Shares still running: not revoked, end date not reached."""
    return Share.objects.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


def _received_q(user) -> Q:
    """Shares addressed to the user's team, or to a department (a team shared with its sub-teams) above it."""
    return Q(team_id=user.team_id) | Q(include_subteams=True, team_id__in=department_ids(user))


def shares_received(user) -> QuerySet[Share]:
    """The running shares the user's team receives (none without a team)."""
    if not getattr(user, "team_id", None):
        return Share.objects.none()
    return shares_active().filter(_received_q(user))


def receives_shares(user) -> bool:
    """Whether the user's team receives any running share: most teams receive none, and then a condition on their
    customers leaves the shares out. Asked once per read-only request."""
    if not getattr(user, "team_id", None):
        return False
    return memoized(("receives_shares", user.pk), lambda: shares_received(user).exists())


def shared_customers_q(user, *, action: str = "view") -> Q:
    """Customers shared with the user's team, as a condition on customers: two subqueries (shared one by one, and
    members of shared lists and segments as they are at read time), or nothing when the team receives no share."""
    if not receives_shares(user):
        return NOTHING
    shares = shares_received(user)
    if action == "change":
        shares = shares.filter(access=Share.Access.EDIT)
    direct = shares.filter(customer__isnull=False).values("customer_id")
    lists = shares.filter(segment__isnull=False).values("segment_id")
    members = SegmentMember.objects.filter(segment_id__in=lists).values("customer_id")
    return Q(pk__in=direct) | Q(pk__in=members)


def customer_changeable(*, user, customer: Customer) -> bool:
    """Whether the user's scope or an edit share lets them change this customer (their role decides the rest)."""
    if Customer.objects.scope_holds(user, customer):
        return True
    return Customer.objects.visible_to(user, action="change").filter(pk=customer.pk).exists()


def _covering_q(customer_ids) -> Q:
    """Shares that cover these customers: directly, or through a list or segment they are in."""
    ids = list(customer_ids)
    lists = SegmentMember.objects.filter(customer_id__in=ids).values("segment_id")
    return Q(customer_id__in=ids) | Q(segment_id__in=lists)


def shares_of_customer(*, user, customer: Customer) -> dict:
    """What the 360° page shows of sharing: `received`, the running shares through which the user's team has this
    customer; `given`, every running share of the customer, for those whose own scope holds it (`in_scope`: the
    giving side, who may share it)."""
    covering = shares_active().filter(_covering_q([customer.pk])).select_related("team", "shared_by", "segment")
    rows = list(covering)
    received_ids = (
        set(shares_received(user).filter(pk__in=[s.pk for s in rows]).values_list("pk", flat=True)) if rows else set()
    )
    in_scope = Customer.objects.scope_holds(user, customer)
    received = [s for s in rows if s.pk in received_ids]
    return {"received": received, "given": rows if in_scope else [], "in_scope": in_scope}


def share_marks(*, user, customer_ids) -> dict[int, Share]:
    """For a list page: per customer of `customer_ids` shared with the user's team, the share (the one lasting
    longest), in one query. Empty for roles that see every customer anyway."""
    ids = set(customer_ids)
    if not ids or scope_of(user) == Scope.ALL or not getattr(user, "team_id", None):
        return {}
    if not receives_shares(user):  # a plain look-up costs a third of the join below
        return {}
    received = shares_received(user)
    rows = (
        received.filter(Q(customer_id__in=ids) | Q(segment__members__customer_id__in=ids))
        .annotate(member_id=F("segment__members__customer_id"))
        .select_related("shared_by", "segment")
    )
    marks: dict[int, Share] = {}
    for share in rows:
        cid = share.customer_id or share.member_id
        if cid not in ids or (cid in marks and marks[cid].expires_at >= share.expires_at):
            continue
        marks[cid] = share
    return marks


class ShareFilter(Schema):
    """Filters of the share list: the page, the API and the CLI read this one definition."""

    direction: Literal["all", "sent", "received"] = Field(
        "all", description="`sent`: shares I made; `received`: shares to my team or my department"
    )
    state: Literal["active", "expired", "revoked", "any"] = "active"
    customer: str | None = Field(None, max_length=40, description="A customer number")
    segment: int | None = Field(None, ge=1, le=MAX_ID, description="A list or segment id")
    team: int | None = Field(None, ge=1, le=MAX_ID, description="The receiving team's id")


def share_list(*, user, filters: ShareFilter) -> QuerySet[Share]:
    """The shares the user may read: those they made and those their team receives; an administrator reads all."""
    shares = Share.objects.all()
    received = _received_q(user) if getattr(user, "team_id", None) else NOTHING
    sent = Q(shared_by_id=user.pk)
    if filters.direction == "sent":
        shares = shares.filter(sent)
    elif filters.direction == "received":
        shares = shares.filter(received)
    elif user.role != Role.ADMINISTRATOR:
        shares = shares.filter(sent | received)
    now = timezone.now()
    if filters.state == "active":
        shares = shares.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif filters.state == "expired":
        shares = shares.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif filters.state == "revoked":
        shares = shares.filter(revoked_at__isnull=False)
    if filters.customer:
        shares = shares.filter(customer__number=normalize_number(filters.customer))
    if filters.segment is not None:
        shares = shares.filter(segment_id=filters.segment)
    if filters.team is not None:
        shares = shares.filter(team_id=filters.team)
    return shares.select_related("customer", "segment", "team", "shared_by", "revoked_by").order_by(
        "-created_at", "-id"
    )


def share_get(*, user, pk: int) -> Share:
    """One share the user may read, in any state, or Http404."""
    share = share_list(user=user, filters=ShareFilter(state="any")).filter(pk=pk).first()
    if share is None:
        raise Http404(_("No share with id %(id)s.") % {"id": pk})
    return share


def share_teams() -> QuerySet[Team]:
    """The teams one may share with, for choices."""
    return Team.objects.select_related("parent").order_by("name")


def share_recipient_team_ids(customer: Customer, parents: dict[int, int | None]) -> set[int]:
    """Teams that receive a running share of `customer` (directly or through a list or segment), the sub-teams of a
    department shared with included: `visible_to`'s share rule turned around, for who may own its follow-ups."""
    shares = shares_active().filter(_covering_q([customer.pk])).order_by().values_list("team_id", "include_subteams")
    teams, departments = set(), set()
    for team, include_subteams in shares:
        (departments if include_subteams else teams).add(team)
    return teams | team_descendants(departments, parents)
