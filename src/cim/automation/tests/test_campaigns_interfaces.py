"""Campaigns through the pages, the API and the CLI, for each role: the same services, the same errors."""

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.automation.campaigns import campaign_create
from cim.automation.models import Campaign
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record
from cim.segments.services import segment_create, segment_members_add

VARIANT = {"subject": "{{ customer.display_name }}，您好", "body": "新品上市"}
MANAGERS = {Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING}
READERS = MANAGERS | {Role.ANALYST}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.CIM_MESSAGE_QUIET_HOURS = ""


@pytest.fixture
def listing(admin_user):
    fang = make_customer(admin_user, display_name="王芳", emails=[{"address": "fang@example.com"}])
    consent_record(customer=fang, purpose="marketing", text="同意", text_version="1", actor=None)
    segment = segment_create(actor=admin_user, name="会员", kind="static")
    segment_members_add(segment=segment, customer_ids=[fang.pk], actor=admin_user)
    return segment


@pytest.mark.parametrize("role", list(Role))
def test_pages_per_role(client, users, admin_user, listing, role):
    campaign = campaign_create(actor=admin_user, name="双十二", segment=listing, variants=[VARIANT])
    client.force_login(users[role])
    pages = [reverse("automation:campaign_list"), reverse("automation:campaign_detail", args=[campaign.pk])]
    for url in pages:
        assert client.get(url).status_code == (200 if role in READERS else 403), (role, url)
    editor = client.get(reverse("automation:campaign_create"))
    assert editor.status_code == (200 if role in MANAGERS else 403)
    start = client.post(reverse("automation:campaign_action", args=[campaign.pk, "start"]))
    assert start.status_code == (302 if role in MANAGERS else 403)
    campaign.refresh_from_db()
    assert campaign.status == ("sending" if role in MANAGERS else "draft")


def test_editor_saves_shows_field_errors_and_previews(client, admin_user, listing):
    client.force_login(admin_user)
    with override("en"):
        bad = client.post(
            reverse("automation:campaign_create"),
            {"name": "", "segment": "", "variant-0-subject": "{{ oops", "variant-0-body": "x", "cost": "-1"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "A name has 1 to 100 characters." in page and "Choose a segment or static list." in page
    assert "Enter an amount of 0 or more." in page
    fields = {
        "name": "双十二",
        "segment": listing.pk,
        "purpose": "marketing",
        "variant-0-subject": VARIANT["subject"],
        "variant-0-body": "{% for p in recommendations %}{{ p.name }}{% endfor %}新品",
        "variant-1-subject": "只剩今天",
        "variant-1-body": "快来",
        "test_percent": "20",
        "test_metric": "open_rate",
        "test_wait_hours": "4",
        "throttle_per_minute": "0",
        "attribution_days": "7",
        "cost": "100",
    }
    saved = client.post(reverse("automation:campaign_create"), fields)
    campaign = Campaign.objects.get()
    assert saved.status_code == 302 and saved["Location"] == reverse("automation:campaign_detail", args=[campaign.pk])
    assert [v.label for v in campaign.variants.all()] == ["A", "B"]
    number = listing.members.get().customer.number
    preview = client.post(reverse("automation:campaign_preview"), {**fields, "customer": number}).content.decode()
    assert "王芳，您好" in preview and "只剩今天" in preview
    detail = client.get(reverse("automation:campaign_detail", args=[campaign.pk])).content.decode()
    assert "campaign-funnel" in detail and "campaign-chart" in detail


def test_api_create_start_report_and_errors(api_client, admin_user, users, listing):
    api = api_client(admin_user)
    created = api.post(
        "/api/v1/campaigns",
        data={"name": "双十二", "segment": listing.pk, "variants": [VARIANT, {**VARIANT, "subject": "B"}],
              "test_percent": 50, "cost": "10"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert [v["label"] for v in body["variants"]] == ["A", "B"] and body["status"] == "draft"
    bad = api.post(
        "/api/v1/campaigns",
        data={"name": "双十二", "segment": 999999, "variants": [{"subject": "{{ x", "body": "y"}]},
        content_type="application/json",
    )
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["details"]} if "details" in bad.json() else set()
    assert {"name", "segment"} <= {f.split(".")[0] for f in fields}
    number = listing.members.get().customer.number
    preview = api.post(
        f"/api/v1/campaigns/{body['id']}/preview", data={"customer": number}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()[0]["subject"] == "王芳，您好"
    started = api.post(f"/api/v1/campaigns/{body['id']}/start")
    assert started.json()["status"] in ("sending", "testing")
    again = api.post(f"/api/v1/campaigns/{body['id']}/start")
    assert again.status_code == 422 and again.json()["details"][0]["field"] == "status"
    report = api.get(f"/api/v1/campaigns/{body['id']}/report").json()
    assert set(report["total"]) >= {"sent", "delivered", "bounced", "opened", "clicked", "unsubscribed", "converted"}
    assert report["cost"] == "10.00" or float(report["cost"]) == 10
    frozen = api.patch(f"/api/v1/campaigns/{body['id']}", data={"test_percent": 10}, content_type="application/json")
    assert frozen.status_code == 422
    cost = api.patch(f"/api/v1/campaigns/{body['id']}", data={"cost": "25.5"}, content_type="application/json")
    assert cost.status_code == 200 and float(cost.json()["cost"]) == 25.5


def test_cli_create_start_advance_report(admin_user, listing, tmp_path, capsys):
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps({"name": "命令行", "segment": listing.pk, "variants": [VARIANT]}), "utf-8")
    call_command("campaigns", "create", "--file", str(spec), "--user", admin_user.username, "--json")
    created = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    call_command("campaigns", "start", str(created["id"]), "--user", admin_user.username)
    call_command("campaigns", "advance", "--json")
    advanced = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert advanced["queued"] == 1
    call_command("campaigns", "report", str(created["id"]), "--json")
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["status"] == "sending" and report["total"]["queued"] == 1
    with pytest.raises(CommandError, match="name"):
        call_command("campaigns", "create", "--file", str(spec), "--user", admin_user.username)
    with pytest.raises(CommandError, match="No campaign"):
        call_command("campaigns", "report", "999999")


def test_a_translation_from_the_page_the_api_and_the_cli(client, api_client, admin_user, listing, tmp_path, capsys):
    anna = make_customer(admin_user, display_name="Anna", emails=[{"address": "anna@example.com"}])
    consent_record(customer=anna, purpose="marketing", text="I agree", text_version="1", language="en", actor=None)
    english = {"language": "en", "subject": "Hello {{ customer.display_name }}", "body": "New arrivals"}

    client.force_login(admin_user)
    fields = {"name": "双语", "segment": listing.pk, "purpose": "marketing", "variant-0-subject": VARIANT["subject"],
              "variant-0-body": VARIANT["body"], "variant-0-language": "zh-hans", "variant-0-tr-language": "en",
              "variant-0-tr-subject": english["subject"], "variant-0-tr-body": english["body"], "test_percent": "0",
              "test_metric": "click_rate", "test_wait_hours": "4", "throttle_per_minute": "0",
              "attribution_days": "7", "cost": "0"}  # fmt: skip
    preview = client.post(reverse("automation:campaign_preview"), {**fields, "customer": anna.number})
    assert "Hello Anna" in preview.content.decode()
    same = client.post(reverse("automation:campaign_create"), {**fields, "variant-0-tr-language": "zh-hans"})
    assert same.status_code == 400 and 'data-translation="A" open' in same.content.decode()
    assert client.post(reverse("automation:campaign_create"), fields).status_code == 302
    campaign = Campaign.objects.get(name="双语")
    editor = client.get(reverse("automation:campaign_edit", args=[campaign.pk])).content.decode()
    assert 'value="Hello {{ customer.display_name }}"' in editor

    api = api_client(admin_user)
    [variant] = api.get(f"/api/v1/campaigns/{campaign.pk}").json()["variants"]
    assert variant["translations"] == [{**english, "html": ""}]
    rendered = api.post(
        f"/api/v1/campaigns/{campaign.pk}/preview", data={"customer": anna.number}, content_type="application/json"
    )
    assert rendered.json()[0]["subject"] == "Hello Anna"
    dropped = api.patch(
        f"/api/v1/campaigns/{campaign.pk}", data={"variants": [VARIANT]}, content_type="application/json"
    )
    assert dropped.json()["variants"][0]["translations"] == []

    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps({"name": "命令行双语", "segment": listing.pk,
                                "variants": [{**VARIANT, "translations": [english]}]}), "utf-8")  # fmt: skip
    call_command("campaigns", "create", "--file", str(spec), "--user", admin_user.username, "--json")
    created = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Campaign.objects.get(pk=created["id"]).variants.get().translations.get().subject == english["subject"]


def test_the_menu_marks_the_group_of_the_page(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("automation:campaign_list")).content.decode()
    toggles = dict(re.findall(r'<li class="nav-item dropdown" id="(nav-\w+)">\s*<a class="([^"]+)"', page))
    assert toggles == {
        "nav-marketing": "nav-link dropdown-toggle active",
        "nav-analysis": "nav-link dropdown-toggle",
        "nav-admin": "nav-link dropdown-toggle",
    }
