"""The shares API, and the customers API as a recipient of a share sees it."""

import json

import pytest

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.customers.models import Share
from cim.customers.tests.factories import make_customer


@pytest.fixture
def world(team, other_team):
    owner = user_create(username="owner-east", role=Role.SALES, password="Correct-Horse-42", team=team)[0]
    recipient = user_create(username="sales-north", role=Role.SALES, password="Correct-Horse-42", team=other_team)[0]
    customer = make_customer(owner, display_name="共享客户", phones=[{"number": "13812345678"}])
    return {"owner": owner, "recipient": recipient, "customer": customer, "north": other_team}


def _post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_share_read_then_revoke(api_client, world):
    owner, recipient = api_client(world["owner"]), api_client(world["recipient"])
    number = world["customer"].number
    assert recipient.get(f"/api/v1/customers/{number}").status_code == 404

    created = _post(owner, "/api/v1/shares", {"customer": number, "team": "华北销售部", "reason": "联合拜访"})

    assert created.status_code == 201, created.content
    share = created.json()
    assert (share["customer"], share["team"], share["access"], share["active"]) == (number, "华北销售部", "read", True)
    assert share["shared_by"] == "owner-east" and share["reason"] == "联合拜访" and share["until"]
    seen = recipient.get(f"/api/v1/customers/{number}")
    assert seen.status_code == 200
    assert seen.json()["phones"][0]["number"] != "+8613812345678"  # masked for a salesperson not owning it
    listed = recipient.get("/api/v1/customers?shared=true").json()["items"]
    assert [c["number"] for c in listed] == [number]
    patched = recipient.patch(
        f"/api/v1/customers/{number}", data=json.dumps({"alias": "改"}), content_type="application/json"
    )
    assert patched.status_code == 403 and patched.json()["code"] == "read_only_share"
    assert recipient.get("/api/v1/shares?direction=received").json()[0]["id"] == share["id"]
    assert recipient.delete(f"/api/v1/shares/{share['id']}").json()["code"] == "permission_denied"

    revoked = owner.delete(f"/api/v1/shares/{share['id']}")

    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert recipient.get(f"/api/v1/customers/{number}").status_code == 404
    assert owner.get("/api/v1/shares?state=revoked").json()[0]["revoked_by"] == "owner-east"


def test_edit_share_lets_the_recipient_patch(api_client, world):
    _post(
        api_client(world["owner"]),
        "/api/v1/shares",
        {"customer": world["customer"].number, "team": "华北销售部", "reason": "代管", "access": "edit"},
    )
    response = api_client(world["recipient"]).patch(
        f"/api/v1/customers/{world['customer'].number}",
        data=json.dumps({"alias": "代管"}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["alias"] == "代管"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"team": "没有这个部门", "reason": "x"}, "team"),
        ({"team": "华北销售部", "reason": "x", "until": "2020-01-01"}, "until"),
        ({"team": "华北销售部", "reason": "x", "access": "all"}, "access"),
        ({"team": "华北销售部"}, "reason"),
    ],
)
def test_bad_input_gets_a_field_error(api_client, world, body, field):
    response = _post(api_client(world["owner"]), "/api/v1/shares", {"customer": world["customer"].number, **body})
    assert response.status_code == 422
    assert field in {d["field"] for d in response.json()["details"]}
    assert not Share.objects.exists()


def test_a_customer_outside_scope_is_not_found(api_client, world):
    response = _post(
        api_client(world["recipient"]),
        "/api/v1/shares",
        {"customer": world["customer"].number, "team": "华北销售部", "reason": "x"},
    )
    assert response.status_code == 404
