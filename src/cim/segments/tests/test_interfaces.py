"""Segments through the page, the API and the CLI: the same rules, the same members, the same errors."""

import json

from django.core.management import call_command
from django.urls import reverse
from django.utils.translation import override

from cim.customers.tests.factories import make_customer
from cim.segments.models import Segment
from cim.segments.services import segment_create

WOMEN = {"match": "all", "rules": [{"field": "gender", "operator": "eq", "value": "female"}]}


def test_builder_page_creates_a_segment_and_reports_bad_rules(client, admin_user, users):
    make_customer(admin_user, display_name="王芳", gender="female")
    client.force_login(admin_user)
    page = client.get(reverse("segments:create"))
    assert page.status_code == 200 and b"rule-builder" in page.content
    bad = {"match": "all", "rules": [{"field": "total_spent", "operator": "gte", "value": "很多"}]}
    with override("en"):
        response = client.post(
            reverse("segments:create"),
            {"name": "坏规则", "kind": "dynamic", "rules": json.dumps(bad)},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 400
    assert "Condition 1: Total spent: “很多” is not a number." in response.content.decode()
    assert not Segment.objects.exists()
    response = client.post(
        reverse("segments:create"), {"name": "女性", "kind": "dynamic", "rules": json.dumps(WOMEN), "tag": "女客"}
    )
    segment = Segment.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("segments:detail", args=[segment.pk])
    assert segment.size == 1 and segment.tag.name == "女客"
    detail = client.get(response["Location"]).content.decode()
    assert "王芳" in detail and f"?segment={segment.pk}" in detail
    listing = client.get(reverse("customers:list"), {"segment": segment.pk}).content.decode()
    assert "王芳" in listing
    client.force_login(users["sales"])
    assert client.get(reverse("segments:create")).status_code == 403
    assert client.get(reverse("segments:list")).status_code == 200


def test_preview_counts_what_the_rules_hold(client, admin_user):
    make_customer(admin_user, display_name="王芳", gender="female")
    make_customer(admin_user, display_name="李雷", gender="male")
    client.force_login(admin_user)
    response = client.post(reverse("segments:preview"), {"rules": json.dumps(WOMEN)})
    assert response.json()["count"] == 1 and response.json()["sample"][0]["name"] == "王芳"
    response = client.post(reverse("segments:preview"), {"rules": "{not json"})
    assert response.status_code == 400 and response.json()["errors"]


def test_static_list_from_the_customer_list(client, admin_user):
    a = make_customer(admin_user, display_name="甲")
    b = make_customer(admin_user, display_name="乙")
    listing = segment_create(actor=admin_user, name="展会", kind="static")
    client.force_login(admin_user)
    page = client.get(reverse("customers:list")).content.decode()
    assert 'id="add-to-list"' in page
    response = client.post(reverse("segments:add_members"), {"segment": listing.pk, "ids": [a.pk, b.pk]})
    assert response.status_code == 302
    listing.refresh_from_db()
    assert listing.size == 2


def test_api_create_read_filter_and_errors(api_client, admin_user, users):
    make_customer(admin_user, display_name="王芳", gender="female")
    api = api_client(admin_user)
    created = api.post(
        "/api/v1/segments", data={"name": "女性", "rules": WOMEN, "tag": "女客"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["size"], body["tag"], body["kind"]) == (1, "女客", "dynamic")
    customers = api.get("/api/v1/customers", {"segment": body["id"]}).json()
    assert [c["display_name"] for c in customers["items"]] == ["王芳"]
    bad = {"name": "坏", "rules": {"rules": [{"field": "gender", "operator": "gte", "value": 1}]}}
    with override("en"):
        response = api.post("/api/v1/segments", data=bad, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "rules"
    fields = {f["key"]: f for f in api.get("/api/v1/segments/fields").json()}
    assert "bought_any" in fields["product"]["operators"] and fields["gender"]["choices"]
    patched = api.patch(
        f"/api/v1/segments/{body['id']}", data={"rules": {"rules": []}}, content_type="application/json"
    )
    assert patched.json()["size"] == 1
    assert api.delete(f"/api/v1/segments/{body['id']}").status_code == 204


def test_cli_create_refresh_add_and_list(admin_user, capsys):
    a = make_customer(admin_user, display_name="王芳", gender="female")
    call_command("segments", "create", "女性", "--rules", json.dumps(WOMEN), "--user", admin_user.username, "--json")
    created = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert created["size"] == 1
    call_command("segments", "create", "名单", "--static", "--user", admin_user.username)
    listing = Segment.objects.get(name="名单")
    call_command("segments", "add", str(listing.pk), a.number, "--user", admin_user.username)
    call_command("segments", "refresh", "--json")
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert run["segments"] == 2 and set(run["seconds"]) == {"totals", "scores", "lifecycle", "segments"}
    call_command("segments", "list", "--json")
    sizes = {s["name"]: s["size"] for s in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["segments"]}
    assert sizes == {"女性": 1, "名单": 1}
