"""Sharing (信息共享): services, and the selectors every page, export and API answer read shares through."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from cim.accounts.models import Team
from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.audit.models import AuditEvent
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, Share
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import customer_get, customer_ids_visible, customer_list
from cim.customers.services import PermissionDenied, ReadOnlyShare, customer_update
from cim.customers.sharing import MAX_DAYS, share_create, share_revoke
from cim.customers.sharing_selectors import ShareFilter, share_list, share_marks, shares_of_customer
from cim.customers.tests.factories import make_customer
from cim.privacy.masking import mask_customer
from cim.segments.services import segment_create, segment_members_add


def _user(role, username, team):
    return user_create(username=username, role=role, password="Correct-Horse-42", team=team)[0]


@pytest.fixture
def world(admin_user, team, other_team):
    """An east-China salesperson's customer, and a north-China team (with a sub-team) that does not see it."""
    owner = _user(Role.SALES, "owner-east", team)
    north_sub = Team.objects.create(name="华北销售一组", parent=other_team)
    customer = make_customer(
        owner,
        display_name="共享客户",
        phones=[{"number": "13812345678"}],
        emails=[{"address": "shared@example.com"}],
    )
    return {
        "owner": owner,
        "customer": customer,
        "north": other_team,
        "north_sub": north_sub,
        "north_sales": _user(Role.SALES, "sales-north", other_team),
        "north_service": _user(Role.SERVICE, "service-north", other_team),
        "sub_sales": _user(Role.SALES, "sales-north-sub", north_sub),
    }


def _sees(user, customer) -> bool:
    return customer_list(user=user, filters=CustomerFilter()).filter(pk=customer.pk).exists()


def _share(world, **values) -> Share:
    values.setdefault("reason", "华北大客户合作")
    return share_create(actor=world["owner"], team=world["north"], customer=world["customer"], **values)


def test_a_share_lets_the_team_see_the_customer_until_it_ends(world):
    assert not _sees(world["north_sales"], world["customer"])
    share = _share(world)
    assert _sees(world["north_sales"], world["customer"])
    assert customer_get(user=world["north_sales"], number=world["customer"].number) == world["customer"]
    assert not _sees(world["sub_sales"], world["customer"])  # a team share, not the department
    Share.objects.filter(pk=share.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert not _sees(world["north_sales"], world["customer"])
    with pytest.raises(Http404):
        customer_get(user=world["north_sales"], number=world["customer"].number)


def test_the_default_end_date_and_the_last_day(world):
    share = _share(world)
    assert share.last_day == timezone.localdate() + datetime.timedelta(days=30)
    today = _share(world | {"north": world["north_sub"]}, until=timezone.localdate())
    assert today.is_active and today.last_day == timezone.localdate()


def test_a_department_share_reaches_the_teams_under_it(world):
    _share(world, include_subteams=True)
    assert _sees(world["sub_sales"], world["customer"])
    assert _sees(world["north_sales"], world["customer"])


def test_a_revoked_share_shows_nothing(world):
    share = _share(world)
    share_revoke(share=share, actor=world["owner"])
    assert not _sees(world["north_sales"], world["customer"])
    assert share_revoke(share=share, actor=world["owner"]).revoked_at == share.revoked_at  # twice: no change
    actions = list(AuditEvent.objects.filter(target_id=str(world["customer"].pk)).values_list("action", flat=True))
    assert "customer.share" in actions and "customer.unshare" in actions


def test_only_the_sharer_or_an_administrator_revokes(world, admin_user):
    share = _share(world)
    with pytest.raises(PermissionDenied):
        share_revoke(share=share, actor=world["north_sales"])
    assert share_revoke(share=share, actor=admin_user).revoked_by == admin_user


def test_read_access_cannot_change(world):
    _share(world)
    recipient = world["north_service"]
    with pytest.raises(ReadOnlyShare):
        customer_get(user=recipient, number=world["customer"].number, for_change=True)
    assert customer_ids_visible(user=recipient, ids=[world["customer"].pk], action="change") == []


def test_edit_access_allows_the_roles_edits(world):
    _share(world, access=Share.Access.EDIT)
    recipient = world["north_service"]
    customer = customer_get(user=recipient, number=world["customer"].number, for_change=True)
    customer_update(customer=customer, data=CustomerInput(alias="华北合作"), actor=recipient)
    assert Customer.objects.get(pk=customer.pk).alias == "华北合作"


def test_masking_still_applies_to_shared_customers(world):
    _share(world, access=Share.Access.EDIT)
    # Sales unmask only their own customers, service only phones: a share unmasks nothing more.
    sales_view = mask_customer(
        world["north_sales"], customer_get(user=world["north_sales"], number=world["customer"].number)
    )
    assert sales_view.phones.all()[0].number != "+8613812345678"
    assert "phone.number" in sales_view.masked_fields and "email.address" in sales_view.masked_fields
    service_view = mask_customer(
        world["north_service"], customer_get(user=world["north_service"], number=world["customer"].number)
    )
    assert service_view.phones.all()[0].number == "+8613812345678"
    assert "email.address" in service_view.masked_fields


def test_a_shared_list_follows_its_members(world, admin_user):
    segment = segment_create(actor=admin_user, name="华北合作名单", kind="static")
    share_create(actor=admin_user, team=world["north"], segment=segment, reason="联合跟进")
    assert not _sees(world["north_sales"], world["customer"])
    segment_members_add(segment=segment, customer_ids=[world["customer"].pk], actor=admin_user)
    assert _sees(world["north_sales"], world["customer"])  # a member added after the share
    marks = share_marks(user=world["north_sales"], customer_ids=[world["customer"].pk])
    assert marks[world["customer"].pk].segment == segment


def test_who_may_share_what(world, admin_user, users):
    with pytest.raises(ValidationError) as error:
        share_create(actor=world["north_sales"], team=world["north"], customer=world["customer"], reason="转")
    assert "customer" in error.value.message_dict  # outside their scope
    _share(world)
    with pytest.raises(ValidationError) as error:  # shared with them: not theirs to pass on
        share_create(actor=world["north_service"], team=world["north_sub"], customer=world["customer"], reason="转")
    assert "customer" in error.value.message_dict
    segment = segment_create(actor=admin_user, name="名单", kind="static")
    with pytest.raises(ValidationError) as error:
        share_create(actor=world["owner"], team=world["north"], segment=segment, reason="转")
    assert "segment" in error.value.message_dict
    with pytest.raises(ValidationError) as error:  # marketing may share, but only for reading
        share_create(
            actor=users[Role.MARKETING],
            team=world["north_sub"],
            customer=world["customer"],
            reason="活动",
            access=Share.Access.EDIT,
        )
    assert "access" in error.value.message_dict
    with pytest.raises(PermissionDenied):
        share_create(actor=users[Role.AUDITOR], team=world["north_sub"], customer=world["customer"], reason="查")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"reason": "  "}, "reason"),
        ({"until": datetime.date(2020, 1, 1)}, "until"),
        ({"until": timezone.localdate() + datetime.timedelta(days=MAX_DAYS + 1)}, "until"),
        ({"access": "own"}, "access"),
    ],
)
def test_bad_input_is_refused_per_field(world, values, field):
    with pytest.raises(ValidationError) as error:
        _share(world, **values)
    assert field in error.value.message_dict
    assert not Share.objects.exists()


def test_one_running_share_per_team_and_subject(world):
    _share(world)
    with pytest.raises(ValidationError) as error:
        _share(world)
    assert "team" in error.value.message_dict


def test_share_list_and_the_customer_page_rows(world, admin_user):
    share = _share(world)
    assert list(share_list(user=world["owner"], filters=ShareFilter(direction="sent"))) == [share]
    assert list(share_list(user=world["north_sales"], filters=ShareFilter(direction="received"))) == [share]
    assert list(share_list(user=world["sub_sales"], filters=ShareFilter())) == []
    assert list(share_list(user=admin_user, filters=ShareFilter())) == [share]
    share_revoke(share=share, actor=world["owner"])
    assert list(share_list(user=world["owner"], filters=ShareFilter())) == []
    assert list(share_list(user=world["owner"], filters=ShareFilter(state="revoked"))) == [share]
    running = _share(world)
    rows = shares_of_customer(user=world["north_sales"], customer=world["customer"])
    assert rows == {"received": [running], "given": [], "in_scope": False}
    assert shares_of_customer(user=world["owner"], customer=world["customer"])["given"] == [running]


def test_shared_filter_and_list_query_count(world, django_assert_num_queries):
    _share(world)
    mine = make_customer(world["north_sales"], display_name="自己的")
    shared_only = customer_list(user=world["north_sales"], filters=CustomerFilter(shared=True))
    assert list(shared_only) == [world["customer"]]
    assert set(customer_list(user=world["north_sales"], filters=CustomerFilter())) == {mine, world["customer"]}
    # Whether the team receives a share at all, then the shares as subqueries of the list's one query, plus the
    # three prefetches.
    with django_assert_num_queries(5):
        list(customer_list(user=world["north_sales"], filters=CustomerFilter()))


def test_a_team_that_receives_no_share_lists_without_asking_the_shares(world, django_assert_num_queries):
    make_customer(world["north_sales"], display_name="自己的")
    customer_list(user=world["north_sales"], filters=CustomerFilter())  # reads the team tree once per user object
    with django_assert_num_queries(5) as context:
        list(customer_list(user=world["north_sales"], filters=CustomerFilter()))
    listed = context.captured_queries[1]["sql"]
    assert "customers_customer" in listed and "customers_share" not in listed


def test_exports_and_search_include_shared_customers(world, team):
    """A manager of another department exports and searches what is shared with their team, no more."""
    import io

    from cim.ingest.export import customers_export
    from cim.ingest.tests.test_export import read_csv

    manager = _user(Role.MANAGER, "manager-north", world["north"])
    make_customer(world["owner"], display_name="不共享客户")

    def exported() -> set[str]:
        buffer = io.BytesIO()
        customers_export(user=manager, filters=CustomerFilter(), fmt="csv", out=buffer)
        return {row["display_name"] for row in read_csv(buffer.getvalue())}

    assert "共享客户" not in exported()
    _share(world)
    assert "共享客户" in exported() and "不共享客户" not in exported()
    found = customer_list(user=manager, filters=CustomerFilter(q="共享客户"))
    assert list(found.values_list("display_name", flat=True)) == ["共享客户"]


def test_many_customers_shared_at_once(world, admin_user):
    from cim.customers.sharing import customers_share

    mine = [make_customer(world["owner"], display_name=f"批量{i}") for i in range(3)]
    _share(world)  # the world's customer is already shared with the team
    outside = make_customer(admin_user, display_name="别人的")
    ids = [c.pk for c in mine] + [world["customer"].pk, outside.pk]
    shared = customers_share(actor=world["owner"], customer_ids=ids, team=world["north"], reason="批量协作")
    assert shared == 3
    assert set(Share.objects.filter(reason="批量协作").values_list("customer_id", flat=True)) == {c.pk for c in mine}
    assert AuditEvent.objects.filter(action="customer.share", target_id=str(mine[0].pk)).exists()
    with pytest.raises(ValidationError) as error:
        customers_share(actor=world["owner"], customer_ids=ids, team=world["north"], reason="")
    assert "reason" in error.value.message_dict
