"""Sharing pages: the dialog on the customer and segment pages, what a recipient sees, revoking, the Shares page."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.customers.models import Share
from cim.customers.sharing import share_create
from cim.customers.tests.factories import make_customer
from cim.segments.services import segment_create, segment_members_add


def client_for(user, htmx: bool = False) -> Client:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    client = Client(HTTP_ACCEPT_LANGUAGE="en", **headers)
    client.force_login(user)
    return client


@pytest.fixture
def world(team, other_team):
    owner = user_create(username="owner-east", role=Role.SALES, password="Correct-Horse-42", team=team)[0]
    recipient = user_create(username="service-north", role=Role.SERVICE, password="Correct-Horse-42", team=other_team)[
        0
    ]
    customer = make_customer(
        owner, display_name="共享客户", phones=[{"number": "13812345678"}], emails=[{"address": "a@example.com"}]
    )
    return {"owner": owner, "recipient": recipient, "customer": customer, "north": other_team}


def _share(world, **values):
    values.setdefault("reason", "华北联合拜访")
    return share_create(actor=world["owner"], team=world["north"], customer=world["customer"], **values)


def test_the_owner_shares_through_the_dialog(world):
    client = client_for(world["owner"], htmx=True)
    detail = reverse("customers:detail", args=[world["customer"].number])
    assert "data-share-open" in client.get(detail).content.decode()
    url = reverse("customers:share_create")

    dialog = client.get(url, {"customer": world["customer"].number}).content.decode()
    refused = client.post(url, {"customer": world["customer"].number, "team": world["north"].pk, "access": "read"})
    until = (timezone.localdate() + datetime.timedelta(days=7)).isoformat()
    shared = client.post(
        url,
        {
            "customer": world["customer"].number,
            "team": world["north"].pk,
            "access": "read",
            "reason": "联合拜访",
            "until": until,
        },
    )

    assert "data-share-form" in dialog and 'name="until"' in dialog
    assert refused.status_code == 200 and "This field is required." in refused.content.decode()
    assert shared.status_code == 200
    page = shared.content.decode()
    assert "data-share-given" in page and "华北销售部" in page and "联合拜访" in page and until in page
    assert Share.objects.get().shared_by == world["owner"]


def test_a_service_error_lands_on_its_field(world):
    _share(world)
    response = client_for(world["owner"], htmx=True).post(
        reverse("customers:share_create"),
        {
            "customer": world["customer"].number,
            "team": world["north"].pk,
            "access": "read",
            "reason": "再次",
            "until": timezone.localdate().isoformat(),
        },
    )
    assert "Already shared with this team" in response.content.decode()
    assert Share.objects.count() == 1


def test_the_recipient_sees_who_shared_and_cannot_edit(world):
    _share(world)
    client = client_for(world["recipient"])
    number = world["customer"].number
    page = client.get(reverse("customers:detail", args=[number])).content.decode()
    assert "data-share-received" in page and "owner-east" in page and "华北联合拜访" in page
    assert reverse("customers:edit", args=[number]) not in page
    assert "a***@example.com" in page and "+8613812345678" in page  # service: phones unmasked, emails masked
    assert client.get(reverse("customers:edit", args=[number])).status_code == 403
    assert client.post(reverse("customers:tag", args=[number]), {"add": "VIP"}).status_code == 403
    assert "data-share-open" not in page  # not theirs to pass on

    listed = client.get(reverse("customers:list") + "?shared=1").content.decode()
    assert "data-share-mark" in listed and number in listed
    shares = client.get(reverse("customers:shares")).content.decode()
    assert "data-share-row" in shares and "华北联合拜访" in shares


def test_an_edit_share_shows_the_edit_button(world):
    _share(world, access=Share.Access.EDIT)
    number = world["customer"].number
    page = client_for(world["recipient"]).get(reverse("customers:detail", args=[number])).content.decode()
    assert reverse("customers:edit", args=[number]) in page


def test_revoking_from_the_card_and_the_shares_page(world):
    share = _share(world)
    client = client_for(world["owner"], htmx=True)
    card = client.post(reverse("customers:share_revoke", args=[share.pk]), {"card": "1"}).content.decode()
    assert "data-share-given" not in card
    number = world["customer"].number
    assert client_for(world["recipient"]).get(reverse("customers:detail", args=[number])).status_code == 404
    other = _share(world)
    denied = client_for(world["recipient"]).post(reverse("customers:share_revoke", args=[other.pk]))
    assert denied.status_code == 403
    response = client_for(world["owner"]).post(
        reverse("customers:share_revoke", args=[other.pk]), {"next": reverse("customers:shares")}
    )
    assert response.status_code == 302
    assert Share.objects.filter(revoked_at__isnull=True).count() == 0


def test_sharing_a_list_from_its_page(world, admin_user):
    segment = segment_create(actor=admin_user, name="华北合作名单", kind="static")
    segment_members_add(segment=segment, customer_ids=[world["customer"].pk], actor=admin_user)
    client = client_for(admin_user)
    page = client.get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert "data-share-open" in page
    until = timezone.localdate().isoformat()
    response = client.post(
        reverse("customers:share_create"),
        {"segment": segment.pk, "team": world["north"].pk, "access": "read", "reason": "名单共享", "until": until},
    )
    assert response.status_code == 302
    assert (
        client_for(world["recipient"]).get(reverse("customers:detail", args=[world["customer"].number])).status_code
        == 200
    )
    # A salesperson cannot share a list (it may hold customers outside their scope): no button.
    page = client_for(world["owner"]).get(reverse("segments:detail", args=[segment.pk])).content.decode()
    assert "data-share-open" not in page


def test_list_query_count_with_shares_does_not_grow(world, django_assert_max_num_queries, admin_user):
    """A recipient's list: the shares are subqueries of the page's query; the marks take two queries for the page
    (whether the team receives any share, then the marks) and the team tree one."""
    client = client_for(world["recipient"])
    _share(world)
    segment = segment_create(actor=admin_user, name="批量名单", kind="static")
    share_create(actor=admin_user, team=world["north"], segment=segment, reason="批量")
    client.get(reverse("customers:list"))
    with django_assert_max_num_queries(18) as few:
        assert client.get(reverse("customers:list")).status_code == 200
    made = [make_customer(admin_user, display_name=f"名单客户{i}") for i in range(20)]
    segment_members_add(segment=segment, customer_ids=[c.pk for c in made], actor=admin_user)
    for customer in made[:5]:
        share_create(actor=admin_user, team=world["north"], customer=customer, reason="单独", access="edit")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("customers:list")).content.decode()
    assert "21 customers" in page and page.count("data-share-mark") == 21


def test_sharing_ticked_rows_from_the_list(world):
    other = make_customer(world["owner"], display_name="第二位")
    client = client_for(world["owner"])
    assert "data-bulk-share" in client.get(reverse("customers:list")).content.decode()
    dialog = client_for(world["owner"], htmx=True).get(reverse("customers:bulk_share")).content.decode()
    assert 'name="share_reason"' in dialog and 'form="bulk-form"' in dialog and "华北销售部" in dialog
    response = client.post(
        reverse("customers:bulk_share"),
        {
            "ids": [world["customer"].pk, other.pk],
            "share_team": world["north"].pk,
            "share_access": "read",
            "share_reason": "华北协作",
            "share_until": timezone.localdate().isoformat(),
            "next": reverse("customers:list"),
        },
        follow=True,
    )
    assert "2 customers shared with 华北销售部." in response.content.decode()
    assert Share.objects.filter(reason="华北协作").count() == 2
    refused = client.post(
        reverse("customers:bulk_share"),
        {"ids": [other.pk], "share_team": world["north"].pk, "share_access": "read", "share_until": ""},
        follow=True,
    )
    assert "This field is required." in refused.content.decode()
