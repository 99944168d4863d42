"""`cim share`: create, list and revoke as a named user, with one-line errors."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.customers.models import Share
from cim.customers.tests.factories import make_customer


def _run(*args) -> dict:
    out = StringIO()
    call_command("share", *args, "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_create_list_revoke(team, other_team):
    owner = user_create(username="owner-east", role=Role.SALES, password="Correct-Horse-42", team=team)[0]
    user_create(username="sales-north", role=Role.SALES, password="Correct-Horse-42", team=other_team)
    customer = make_customer(owner, display_name="共享客户")

    created = _run(
        "create",
        "--user",
        "owner-east",
        "--customer",
        customer.number,
        "--team",
        "华北销售部",
        "--reason",
        "联合拜访",
        "--access",
        "edit",
    )
    received = _run("list", "--user", "sales-north", "--direction", "received")
    revoked = _run("revoke", str(created["id"]), "--user", "owner-east")

    assert (created["customer"], created["team"], created["access"]) == (customer.number, "华北销售部", "edit")
    assert [s["id"] for s in received["shares"]] == [created["id"]]
    assert revoked["active"] is False and Share.objects.get().revoked_at is not None


def test_errors_are_one_line(team, other_team):
    owner = user_create(username="owner-east", role=Role.SALES, password="Correct-Horse-42", team=team)[0]
    customer = make_customer(owner, display_name="共享客户")
    with pytest.raises(CommandError, match="No team named"):
        _run("create", "--user", "owner-east", "--customer", customer.number, "--team", "无", "--reason", "x")
    with pytest.raises(CommandError, match="Choose a day"):
        _run(
            "create",
            "--user",
            "owner-east",
            "--customer",
            customer.number,
            "--team",
            "华北销售部",
            "--reason",
            "x",
            "--until",
            "2020-01-01",
        )
    with pytest.raises(CommandError, match="No active user"):
        _run("list", "--user", "nobody")
    with pytest.raises(CommandError, match="No share"):
        _run("revoke", "999", "--user", "owner-east")
