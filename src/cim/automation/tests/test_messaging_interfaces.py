"""Messages through the pages, the API, the CLI and the customer's timeline, with each role's rights."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.timeline import timeline_page
from cim.automation.models import Message, MessageTemplate
from cim.customers.tests.factories import make_customer
from cim.privacy.services import consent_record


@pytest.fixture(autouse=True)
def _messaging_settings(settings, tmp_path):
    settings.CIM_MESSAGE_QUIET_HOURS = ""
    settings.CIM_MESSAGE_OUTBOX_DIR = tmp_path / "outbox"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def fang(admin_user):
    fang = make_customer(admin_user, display_name="王芳", given_name="芳", emails=[{"address": "fang@example.com"}])
    consent_record(customer=fang, purpose="marketing", text="同意", text_version="1", actor=None)
    return fang


@pytest.fixture
def template(db):
    return MessageTemplate.objects.create(
        name="问候", channel="email", purpose="marketing", subject="{{ customer.given_name }}您好", body="欢迎光临"
    )


def test_template_pages_create_edit_preview_and_send(client, users, fang, template):
    client.force_login(users[Role.MARKETING])
    assert client.get(reverse("automation:message_templates")).status_code == 200
    with override("en"):
        bad = client.post(
            reverse("automation:message_template_create"),
            {"name": "", "channel": "email", "purpose": "marketing", "language": "zh-hans", "body": "{{ oops"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert bad.status_code == 400
    page = bad.content.decode()
    assert 'id="id_name" name="name"' in page and page.count("is-invalid") >= 2
    created = client.post(
        reverse("automation:message_template_create"),
        {
            "name": "新模板",
            "channel": "sms",
            "purpose": "marketing",
            "language": "en",
            "body": "Hi {{ customer.display_name }}",
            "params": '{"name": "{{ customer.display_name }}"}',
            "is_active": "on",
        },
    )
    made = MessageTemplate.objects.get(name="新模板")
    assert created.status_code == 302 and made.params == {"name": "{{ customer.display_name }}"}
    bad_json = client.post(
        reverse("automation:message_template", args=[made.pk]),
        {"name": "新模板", "channel": "sms", "purpose": "marketing", "language": "en", "body": "x", "params": "{"},
    )
    assert bad_json.status_code == 400 and "is-invalid" in bad_json.content.decode()
    preview = client.post(reverse("automation:message_template_preview", args=[template.pk]), {"customer": fang.number})
    assert "芳您好" in preview.content.decode()
    missing = client.post(reverse("automation:message_template_preview", args=[template.pk]), {"customer": "nope"})
    assert "alert-danger" in missing.content.decode()
    sent = client.post(reverse("automation:message_template_send", args=[template.pk]), {"customers": fang.number})
    assert sent.status_code == 302
    assert Message.objects.get().customer == fang
    listing = client.get(sent["Location"]).content.decode()
    assert fang.number in listing and "问候" in listing


def test_template_pages_need_the_send_permission(client, users, template):
    client.force_login(users[Role.SALES])
    assert client.get(reverse("automation:message_templates")).status_code == 403
    assert client.get(reverse("automation:message_template", args=[template.pk])).status_code == 403
    assert client.post(reverse("automation:message_template_send", args=[template.pk])).status_code == 403
    assert client.get(reverse("automation:message_list")).status_code == 200


def test_the_message_log_shows_only_customers_the_user_sees(client, users, admin_user, template):
    sales = users[Role.SALES]
    mine = make_customer(admin_user, display_name="我的", owner_id=sales.pk, team_id=sales.team_id)
    theirs = make_customer(admin_user, display_name="别人的")
    for customer in (mine, theirs):
        Message.objects.create(customer=customer, channel="email", purpose="marketing", key=f"k{customer.pk}")
    client.force_login(sales)
    page = client.get(reverse("automation:message_list")).content.decode()
    assert mine.number in page and theirs.number not in page
    assert client.get(reverse("automation:message_list"), {"cursor": "garbage"}).status_code == 200


def test_api_templates_preview_send_and_log(api_client, users, fang, template):
    api = api_client(users[Role.MARKETING])
    bad = api.post(
        "/api/v1/message-templates",
        {"name": "坏", "purpose": "marketing", "body": "{% if %}"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "body"
    created = api.post(
        "/api/v1/message-templates",
        {"name": "生日", "purpose": "marketing", "channel": "sms", "body": "{{ customer.display_name }}生日快乐"},
        content_type="application/json",
    )
    assert created.status_code == 201
    preview = api.post(
        f"/api/v1/message-templates/{template.pk}/preview", {"customer": fang.number}, content_type="application/json"
    )
    assert preview.json()["subject"] == "芳您好"
    typo = api.patch(
        f"/api/v1/message-templates/{template.pk}",
        {"subject": "{{ customer.dispaly_name }}"},
        content_type="application/json",
    )
    assert typo.status_code == 200  # lenient when sending; the preview is strict
    strict = api.post(
        f"/api/v1/message-templates/{template.pk}/preview", {"customer": fang.number}, content_type="application/json"
    )
    assert strict.status_code == 422
    no_consent = make_customer(users[Role.ADMINISTRATOR], display_name="没同意", emails=[{"address": "n@example.com"}])
    body = {"template": template.pk, "customers": [fang.number, no_consent.number], "key": "once"}
    sent = api.post("/api/v1/messages", body, content_type="application/json")
    assert sent.status_code == 202 and sent.json() == {"queued": 1, "suppressed": {"consent": 1}, "duplicates": 0}
    again = api.post("/api/v1/messages", body, content_type="application/json").json()
    assert again == {"queued": 0, "suppressed": {}, "duplicates": 2}
    log = api.get("/api/v1/messages", {"customer": fang.number}).json()
    assert [item["status"] for item in log["items"]] == ["queued"]
    assert api.get(f"/api/v1/messages/{log['items'][0]['id']}").json()["template_name"] == "问候"
    assert api.post("/api/v1/messages", {"template": 999}, content_type="application/json").status_code == 404


def test_cli_lists_sends_delivers_and_counts(admin_user, fang, template, capsys):
    call_command("messages", "templates", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["templates"][0]["name"] == "问候"
    call_command("messages", "send", str(template.pk), fang.number, "--user", admin_user.username, "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["queued"] == 1
    call_command("messages", "deliver", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sent"] == 1
    call_command("messages", "status", "--customer", fang.number, "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["statuses"] == {"sent": 1}
    with pytest.raises(Exception, match="Unknown customer numbers"):
        call_command("messages", "send", str(template.pk), "C-NOPE", "--user", admin_user.username)


def test_messages_are_on_the_customers_timeline(admin_user, fang, template):
    Message.objects.create(
        customer=fang,
        channel="email",
        purpose="marketing",
        template=template,
        key="t",
        status="suppressed",
        reason="consent",
    )
    [entry] = timeline_page(customer_id=fang.pk, kinds=["message"]).entries
    assert entry.kind == "message" and "问候" in entry.title and len(entry.badges) == 2


def test_erasure_blanks_what_messages_hold_about_the_customer(admin_user, fang, template):
    from cim.privacy.erasure import customer_erase

    Message.objects.create(
        customer=fang,
        channel="email",
        purpose="marketing",
        template=template,
        key="e",
        context={"coupon": "王芳-88"},
        error="550 fang@example.com unknown",
        address_key="abc",
    )
    customer_erase(customer=fang, actor=admin_user, reason="本人要求")
    message = Message.objects.get()
    assert (message.context, message.error) == ({}, "")


def test_the_message_list_costs_the_same_queries_for_more_rows(client, api_client, users, fang, template):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    manager = users[Role.MARKETING]
    client.force_login(manager)
    api = api_client(manager)

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            client.get(reverse("automation:message_list"))
        with CaptureQueriesContext(connection) as endpoint:
            api.get("/api/v1/messages")
        return len(page), len(endpoint)

    Message.objects.create(customer=fang, channel="email", purpose="marketing", template=template, key="q0")
    counts()  # warm: the token's first use is recorded once
    few = counts()
    for n in range(1, 6):
        Message.objects.create(customer=fang, channel="email", purpose="marketing", template=template, key=f"q{n}")
    assert counts() == few
