"""Access events: logins, failed logins, logouts, 403s on pages and the API, changes in Django's admin, exports."""

import pytest
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse

from cim.audit.chain import chain_verify
from cim.audit.checks import audit_key_check
from cim.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"


def test_login_and_logout_are_recorded_with_the_address(users):
    user = users["sales"]
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.post(reverse("login"), {"login": user.username, "password": PASSWORD}).status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert (login.actor, login.target_id, login.note) == (user, str(user.pk), "ip=203.0.113.9")
    client.post(reverse("logout"))
    assert AuditEvent.objects.get(action="auth.logout").actor == user
    assert chain_verify().ok


def test_failed_login_keeps_the_username_never_the_password(users, settings):
    settings.CIM_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    client = Client(HTTP_X_REAL_IP="198.51.100.7")
    client.post(reverse("login"), {"login": "sales-user", "password": "Wrong-Secret-99"})
    client.post(reverse("login"), {"login": "nobody", "password": "Other-Secret-77"})
    known, unknown = AuditEvent.objects.filter(action="auth.login_failed").order_by("seq")
    assert known.actor is None and known.target_id == str(users["sales"].pk)
    assert known.note == 'username="sales-user" ip=198.51.100.7'
    assert unknown.target_id == "" and 'username="nobody"' in unknown.note
    for event in (known, unknown):
        assert "Secret" not in f"{event.note} {event.fields} {event.target_id}"


def test_a_refused_page_is_recorded(users):
    client = Client()
    client.force_login(users["sales"])
    response = client.get(reverse("audit:list") + "?note=secret-value")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert (event.actor, event.target_type, event.target_id) == (users["sales"], "view", "audit:list")
    assert event.note.startswith("GET /audit/") and "secret-value" not in event.note


def test_a_refused_api_call_is_recorded_with_the_token_user(users, api_client):
    response = api_client(users["sales"]).get("/api/v1/audit/events")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="access.denied")
    assert event.actor == users["sales"] and event.target_id == "api:list_events"


def test_admin_changes_are_recorded(admin_user):
    from cim.accounts.models import Team

    team = Team.objects.create(name="旧名")
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:accounts_team_change", args=[team.pk])
    response = client.post(url, {"name": "新名"})
    assert response.status_code == 302, response.content[:500]
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "accounts.team", str(team.pk))
    assert event.fields and "新名" not in event.note


def test_deploy_check_warns_about_the_key(settings, monkeypatch):
    settings.CIM_AUDIT_KEY = "changeme"
    assert [w.id for w in audit_key_check(None)] == ["cim.audit.W001"]
    settings.CIM_AUDIT_KEY = "short-key"
    assert [w.id for w in audit_key_check(None)] == ["cim.audit.W002"]
    settings.CIM_AUDIT_KEY = "k" * 48
    monkeypatch.delenv("CIM_AUDIT_KEY", raising=False)
    assert [w.id for w in audit_key_check(None)] == ["cim.audit.W003"]
    monkeypatch.setenv("CIM_AUDIT_KEY", "k" * 48)
    assert audit_key_check(None) == []
    assert "cim.audit.W003" not in [m.id for m in run_checks(include_deployment_checks=True)]
