import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cim.customers.tests.factories import make_customer
from cim.privacy.models import DataSubjectRequest, ErasureTombstone, RetentionRule

pytestmark = pytest.mark.django_db


def test_api_records_consent_and_refuses_a_bad_purpose(admin_user, api_client):
    customer = make_customer(admin_user)
    client = api_client(admin_user)
    url = f"/api/v1/customers/{customer.number}/consents"
    body = {"purpose": "third_party", "text": "同意共享", "text_version": "v2", "granted": False}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 201
    data = response.json()
    state = {s["purpose"]: s["granted"] for s in data["current"]}
    assert state["third_party"] is False and state["marketing"] is None
    assert len(data["ledger"][0]["text_sha256"]) == 64

    response = client.post(url, json.dumps({**body, "purpose": "spam"}), content_type="application/json")
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "purpose"


def test_api_erase_needs_the_number_typed_again(admin_user, api_client):
    customer = make_customer(admin_user, display_name="孙七")
    client = api_client(admin_user)
    url = f"/api/v1/customers/{customer.number}/erase"
    response = client.post(url, json.dumps({"reason": "r", "confirm": "nope"}), content_type="application/json")
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "confirm"
    response = client.post(
        url, json.dumps({"reason": "r", "confirm": customer.number}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["number"] == customer.number
    assert ErasureTombstone.objects.filter(customer_id=customer.pk).exists()


def test_api_request_workflow_and_package(admin_user, api_client):
    customer = make_customer(admin_user)
    client = api_client(admin_user)
    created = client.post(
        "/api/v1/privacy/requests",
        json.dumps({"customer": customer.number, "kind": "portability", "law": "gdpr"}),
        content_type="application/json",
    ).json()
    path = f"/api/v1/privacy/requests/{created['id']}"
    assert client.get(f"{path}/package").status_code == 422  # identity not verified
    bad = client.post(f"{path}/transition", json.dumps({"action": "fly"}), content_type="application/json")
    assert bad.status_code == 422
    ok = client.post(
        f"{path}/transition",
        json.dumps({"action": "verify", "identity_method": "email_link"}),
        content_type="application/json",
    )
    assert ok.json()["status"] == "verified"
    package = client.get(f"{path}/package?format=json")
    assert package.status_code == 200 and json.loads(package.content)["customer"] == customer.number
    assert client.get(f"{path}/package?format=xml").status_code == 422


def test_cli_request_create_list_verify_complete_and_erase(admin_user, tmp_path, capsys):
    customer = make_customer(admin_user, display_name="周八")
    call_command("privacy", "request", "create", customer.number, "--kind", "erasure", "--law", "gdpr", "--json")
    created = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert created["kind"] == "erasure" and created["law"] == "gdpr"
    call_command("privacy", "request", "list", "--open")
    assert created["reference"] in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("privacy", "request", "complete", str(created["id"]))
    call_command("privacy", "request", "verify", str(created["id"]), "--method", "id_document")
    call_command("privacy", "request", "complete", str(created["id"]), "--user", admin_user.username)
    customer.refresh_from_db()
    assert "周八" not in customer.display_name
    assert DataSubjectRequest.objects.get(pk=created["id"]).status == "completed"

    other = make_customer(admin_user, display_name="吴九")
    call_command("privacy", "erase", other.number, "--reason", "本人要求")
    other.refresh_from_db()
    assert "吴九" not in other.display_name
    with pytest.raises(CommandError):
        call_command("privacy", "erase", "C999999", "--reason", "x")
    call_command("privacy", "replay", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["customers"] == 2


def test_cli_retention_dry_run_and_package(admin_user, tmp_path, capsys):
    RetentionRule.objects.create(name="事件", action="scrub_events", days=30)
    call_command("privacy", "retention")
    assert "事件: 0 would change" in capsys.readouterr().out
    customer = make_customer(admin_user)
    call_command("privacy", "request", "create", customer.number, "--kind", "access", "--json")
    pk = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["id"]
    call_command("privacy", "request", "verify", str(pk), "--method", "account")
    out = tmp_path / "p.csv"
    call_command("privacy", "request", "package", str(pk), "--format", "csv", "--output", str(out))
    assert customer.number in out.read_text("utf-8-sig")


def test_api_refuses_to_edit_a_restricted_customer_until_lifted(admin_user, api_client):
    from cim.privacy.services import restriction_set

    customer = make_customer(admin_user)
    restriction_set(customer=customer, actor=admin_user)
    client = api_client(admin_user)
    url = f"/api/v1/customers/{customer.number}"
    response = client.patch(url, json.dumps({"alias": "x"}), content_type="application/json")
    assert response.status_code == 422
    assert "restricted" in response.json()["details"][0]["message"]
    assert client.delete(f"{url}/restriction").status_code == 204
    assert client.patch(url, json.dumps({"alias": "x"}), content_type="application/json").status_code == 200
