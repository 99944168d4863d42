"""Automation rules through the pages, the API and the CLI: the same validation, the same dry run, per role."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.translation import override

from cim.activities.timeline import timeline_page
from cim.automation import rules as engine
from cim.automation.events import events_dispatch
from cim.automation.models import Rule, RuleRun
from cim.automation.rules import rule_runs_execute
from cim.automation.rules_services import rule_activate, rule_create
from cim.customers.services import customers_tag
from cim.customers.tests.factories import make_customer
from cim.segments.services import segment_create

VIP_RULE = {
    "name": "贵宾欢迎",
    "trigger": {"event": "customer.tag_added", "tag": "VIP"},
    "conditions": {"match": "all", "rules": [{"field": "gender", "operator": "eq", "value": "female"}]},
    "steps": [{"action": "add_tag", "tag": "欢迎"}, {"action": "create_task", "title": "致电问候", "due_days": 2}],
}


@pytest.fixture(autouse=True)
def _fresh_index():
    engine.rules_index_reset()
    yield
    engine.rules_index_reset()


def test_api_creates_validates_activates_and_lists_runs(api_client, admin_user, users):
    client = api_client(admin_user)
    bad = {**VIP_RULE, "steps": [{"action": "set_stage", "stage": "火星"}]}
    with override("en"):
        response = client.post("/api/v1/rules", json.dumps(bad), content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error" and any(d.get("field") == "steps.1" for d in body["details"]), body
    response = client.post("/api/v1/rules", json.dumps(VIP_RULE), content_type="application/json")
    assert response.status_code == 201, response.content
    rule_id = response.json()["id"]
    assert response.json()["is_active"] is False
    assert client.post(f"/api/v1/rules/{rule_id}/activate").json()["is_active"] is True
    fang = make_customer(admin_user, display_name="王芳", gender="female", owner_id=admin_user.pk)
    customers_tag(customer_ids=[fang.pk], add=["VIP"], actor=admin_user)
    events_dispatch()
    rule_runs_execute()
    runs = client.get(f"/api/v1/rules/{rule_id}/runs").json()["items"]
    assert [(r["customer"], r["status"], [s["outcome"] for s in r["steps"]]) for r in runs] == [
        (fang.number, "done", ["done", "done"])
    ]
    # A salesperson's scope leaves other owners' runs out even for the rule's managers.
    assert api_client(users["marketing"]).get(f"/api/v1/rules/{rule_id}/runs").status_code == 200
    assert api_client(users["sales"]).get("/api/v1/rules").status_code == 403
    response = client.patch(f"/api/v1/rules/{rule_id}", json.dumps({"name": None}), content_type="application/json")
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "name"


def test_api_dry_run_shows_who_and_which_steps(api_client, admin_user):
    make_customer(admin_user, display_name="王芳", gender="female")
    make_customer(admin_user, display_name="李伟", gender="male")
    everyone = segment_create(actor=admin_user, name="全部", rules={"match": "all", "rules": []})
    rule = rule_create(actor=admin_user, **VIP_RULE)
    response = api_client(admin_user).post(
        f"/api/v1/rules/{rule.pk}/dry-run", json.dumps({"segment_id": everyone.pk}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["affected"] == 1
    [shown] = response.json()["customers"]
    assert [(s["action"], s["outcome"], s["detail"]) for s in shown["steps"]] == [
        ("add_tag", "done", "+欢迎"),
        ("create_task", "done", "+2d"),
    ]
    assert not RuleRun.objects.exists()
    missing = api_client(admin_user).post(
        f"/api/v1/rules/{rule.pk}/dry-run", json.dumps({"segment_id": 999999}), content_type="application/json"
    )
    assert missing.status_code == 404


def test_pages_build_show_and_switch_a_rule(client, admin_user, users):
    client.force_login(admin_user)
    assert client.get(reverse("automation:rules")).status_code == 200
    page = client.get(reverse("automation:rule_create"))
    assert page.status_code == 200 and b"steps-editor" in page.content and b"rule-builder" in page.content
    form = {
        "name": VIP_RULE["name"],
        "description": "",
        "max_depth": "3",
        "rate_minutes": "60",
        "trigger": json.dumps(VIP_RULE["trigger"]),
        "rules": json.dumps(VIP_RULE["conditions"]),
        "steps": json.dumps([{"action": "wait"}]),
    }
    with override("en"):
        response = client.post(reverse("automation:rule_create"), form, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and "steps.1" in response.content.decode()
    response = client.post(reverse("automation:rule_create"), {**form, "steps": json.dumps(VIP_RULE["steps"])})
    rule = Rule.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("automation:rule", args=[rule.pk])
    make_customer(admin_user, display_name="王芳", gender="female")
    everyone = segment_create(actor=admin_user, name="全部", rules={"match": "all", "rules": []})
    detail = client.get(reverse("automation:rule", args=[rule.pk]), {"segment": everyone.pk}).content.decode()
    assert 'id="dry-run-result"' in detail and "王芳" in detail
    client.post(reverse("automation:rule_activate", args=[rule.pk]), {"active": "1"})
    assert Rule.objects.get().is_active
    client.force_login(users["sales"])
    assert client.get(reverse("automation:rules")).status_code == 403
    assert client.post(reverse("automation:rule_activate", args=[rule.pk]), {"active": "0"}).status_code == 403
    assert Rule.objects.get().is_active


def test_runs_are_on_the_customer_timeline(admin_user):
    rule = rule_activate(rule=rule_create(actor=admin_user, **VIP_RULE), actor=admin_user)
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    customers_tag(customer_ids=[fang.pk], add=["VIP"], actor=admin_user)
    events_dispatch()
    rule_runs_execute()
    entries = timeline_page(customer_id=fang.pk, kinds=["rule"]).entries
    assert len(entries) == 1 and rule.name in entries[0].title
    assert entries[0].url == reverse("automation:rule", args=[rule.pk])


def test_cli_lists_dry_runs_and_activates(admin_user, capsys):
    make_customer(admin_user, display_name="王芳", gender="female")
    everyone = segment_create(actor=admin_user, name="全部", rules={"match": "all", "rules": []})
    rule = rule_create(actor=admin_user, **VIP_RULE)
    call_command(
        "rules", "dry-run", str(rule.pk), "--segment", str(everyone.pk), "--user", admin_user.username, "--json"
    )
    assert json.loads(capsys.readouterr().out)["affected"] == 1
    call_command("rules", "activate", str(rule.pk), "--user", admin_user.username)
    assert Rule.objects.get().is_active
    capsys.readouterr()
    call_command("rules", "list", "--json")
    assert json.loads(capsys.readouterr().out)["rules"][0]["active"] is True
    call_command("rules", "run", "--json")
    capsys.readouterr()
    call_command("rules", "show", str(rule.pk), "--user", admin_user.username, "--json")
    assert json.loads(capsys.readouterr().out)["name"] == VIP_RULE["name"]
