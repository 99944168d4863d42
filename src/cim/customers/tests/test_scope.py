"""Record scope: each role sees own, team's or all customers, in lists and in look-ups alike."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer
from cim.customers.numbering import format_number, scheme_get
from cim.customers.selectors import InvalidNumber, customer_get, customer_list
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer


def _user(role, username, team):
    return user_create(username=username, role=role, password="Correct-Horse-42", team=team)[0]


@pytest.fixture
def world(admin_user, team, other_team):
    """Customers owned by people in two teams, and one only assigned to a team."""
    me = _user(Role.SALES, "sales-me", team)
    colleague = _user(Role.SALES, "sales-colleague", team)
    outsider = _user(Role.SALES, "sales-outsider", other_team)
    customers = {
        "mine": make_customer(admin_user, display_name="我的客户", owner_id=me.pk, team_id=team.pk),
        # Owned by a colleague, no team set: still the team's customer through its owner.
        "colleague": make_customer(admin_user, display_name="同事客户", owner_id=colleague.pk, team_id=None),
        "team_only": make_customer(admin_user, display_name="团队客户", owner_id=None, team_id=team.pk),
        "outsider": make_customer(admin_user, display_name="外部客户", owner_id=outsider.pk, team_id=other_team.pk),
        # Mine, though assigned to the other team: owners always see their own.
        "mine_elsewhere": make_customer(admin_user, display_name="跨组客户", owner_id=me.pk, team_id=other_team.pk),
        "nobody": make_customer(admin_user, display_name="无主客户", owner_id=None, team_id=None),
    }
    # The service makes the creator the owner when none is given; these two have none on purpose.
    Customer.objects.filter(pk__in=[customers["team_only"].pk, customers["nobody"].pk]).update(owner=None)
    for customer in customers.values():
        customer.refresh_from_db()
    return {"me": me, "colleague_user": colleague, "outsider_user": outsider, **customers}


def _visible(user, world) -> set[str]:
    pks = set(customer_list(user=user, filters=CustomerFilter()).values_list("pk", flat=True))
    return {name for name, value in world.items() if hasattr(value, "number") and value.pk in pks}


def test_sales_sees_only_own_customers(world):
    assert _visible(world["me"], world) == {"mine", "mine_elsewhere"}
    assert _visible(world["outsider_user"], world) == {"outsider"}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SERVICE])
def test_manager_and_service_see_their_teams_customers(users, world, role):
    assert _visible(users[role], world) == {"mine", "colleague", "team_only", "mine_elsewhere"}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SERVICE])
def test_team_role_in_the_other_team(other_team, world, role):
    user = _user(role, f"{role}-north", other_team)
    assert _visible(user, world) == {"outsider", "mine_elsewhere"}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SERVICE])
def test_team_role_without_a_team_sees_only_own(world, admin_user, role):
    user = _user(role, f"{role}-loner", None)
    own = make_customer(admin_user, display_name="自己的", owner_id=user.pk)
    assert set(customer_list(user=user, filters=CustomerFilter())) == {own}


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.ANALYST, Role.MARKETING, Role.AUDITOR])
def test_roles_with_all_scope_see_everyone(users, world, role):
    assert _visible(users[role], world) == {"mine", "colleague", "team_only", "outsider", "mine_elsewhere", "nobody"}


def test_inactive_and_anonymous_users_see_nothing(world):
    world["me"].is_active = False
    assert _visible(world["me"], world) == set()
    assert _visible(AnonymousUser(), world) == set()
    assert _visible(None, world) == set()


@pytest.mark.parametrize("role", list(Role))
def test_one_loaded_customer_is_in_scope_exactly_when_the_query_says_so(world, team, other_team, role):
    """`scope_holds` (the 360° page, in Python) and `in_scope_of` (every list, in SQL) are one rule."""
    from cim.accounts.models import Team

    department = Team.objects.create(name="华东大区")
    Team.objects.filter(pk=team.pk).update(parent=department)
    users = [
        _user(role, f"{role}-{where}", where_team)
        for where, where_team in (("here", team), ("there", other_team), ("above", department), ("nowhere", None))
    ]
    customers = Customer.objects.select_related("owner")
    for user in [*users, world["me"]]:
        in_sql = set(Customer.objects.in_scope_of(user).values_list("pk", flat=True))
        assert {c.pk for c in customers if Customer.objects.scope_holds(user, c)} == in_sql, user.username
    users[0].is_active = False
    assert not any(Customer.objects.scope_holds(users[0], c) for c in customers)


def test_customer_get_inside_scope_by_any_case(world):
    mine = world["mine"]
    assert customer_get(user=world["me"], number=mine.number) == mine
    assert customer_get(user=world["me"], number=f"  {mine.number.lower()} ") == mine


def test_customer_get_outside_scope_is_404(users, world):
    with pytest.raises(Http404):
        customer_get(user=world["me"], number=world["outsider"].number)
    with pytest.raises(Http404):
        customer_get(user=users[Role.MANAGER], number=world["nobody"].number)


def test_customer_get_unknown_number_is_404(admin_user, world):
    number = world["nobody"].number
    sequence = int(number.split("-")[1]) + 1000
    unknown = format_number(scheme_get(), sequence, world["nobody"].created_at.date())
    with pytest.raises(Http404):
        customer_get(user=admin_user, number=unknown)


@pytest.mark.parametrize("number", ["", "hello", "C2026-000001-0", "C2026-000001-33", "'; DROP TABLE x; --", "张三"])
def test_customer_get_bad_shape_raises_invalid_number(admin_user, number):
    with pytest.raises(InvalidNumber):
        customer_get(user=admin_user, number=number)


def test_archived_customer_is_still_readable_by_number(admin_user, world):
    customer_archive(customer=world["mine"], actor=admin_user)
    assert customer_get(user=world["me"], number=world["mine"].number).status == "archived"
