"""The `cim` commands people and scripts rely on (DESIGN §4): output, --json and clear errors."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cim.accounts.models import ApiToken, User
from cim.accounts.services import TokenRefused, api_token_authenticate
from cim.customers.models import Customer

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_createuser_without_password_prints_a_one_time_password():
    report = last_json(run("createuser", "alice", "--role", "sales", "--team", "华东销售部", "--json"))
    user = User.objects.get(username="alice")
    assert report["password"] and user.check_password(report["password"])
    assert user.must_change_password and user.team.name == "华东销售部" and user.role == "sales"


def test_createuser_with_password_prints_none():
    output = run("createuser", "bob", "--role", "manager", "--password", "Correct-Horse-42")
    assert "One-time password" not in output
    user = User.objects.get(username="bob")
    assert user.check_password("Correct-Horse-42") and not user.must_change_password


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["carol", "--role", "boss"], "Unknown role"),
        (["carol", "--role", "sales", "--password", "short"], "too weak"),
    ],
)
def test_createuser_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run("createuser", *args)
    assert not User.objects.filter(username="carol").exists()


def test_createuser_refuses_an_existing_name():
    run("createuser", "dave", "--role", "sales")
    with pytest.raises(CommandError, match="already exists"):
        run("createuser", "dave", "--role", "analyst")


def test_token_create_authenticates_then_revoke_stops_it():
    run("createuser", "erin", "--role", "analyst")
    report = last_json(run("token", "create", "erin", "--name", "reports", "--json"))
    assert api_token_authenticate(report["token"]).user == User.objects.get(username="erin")
    assert ApiToken.objects.get(prefix=report["prefix"]).name == "reports"
    assert report["scope"] == "read"

    listed = last_json(run("token", "list", "erin", "--json"))
    assert [t["prefix"] for t in listed["tokens"]] == [report["prefix"]]
    assert report["token"] not in json.dumps(listed)

    run("token", "revoke", report["prefix"])
    with pytest.raises(TokenRefused):
        api_token_authenticate(report["token"])


def test_token_errors():
    with pytest.raises(CommandError, match="No user"):
        run("token", "create", "nobody")
    with pytest.raises(CommandError, match="No token"):
        run("token", "revoke", "cim_00000000")


def test_bootstrap_creates_admin_and_demo_once():
    first = last_json(run("bootstrap", "--customers", "30", "--json"))
    admin = User.objects.get(username="admin")
    assert first["admin_created"] and admin.role == "administrator" and admin.check_password(first["password"])
    assert first["login_url"] == "http://127.0.0.1:8000/login/"
    assert first["demo_customers"] == 30 == Customer.objects.count()

    second = run("bootstrap", "--customers", "30")
    assert "cim changepassword admin" in second
    assert Customer.objects.count() == 30 and User.objects.filter(role="administrator").count() == 1


def test_check_reports_database_and_customers():
    report = last_json(run("check", "--json"))
    assert report["checks_ok"] and report["customers"] == 0
    assert report["database"] in {"sqlite", "postgresql"} and report["data_dir"]
