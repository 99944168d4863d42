"""API tokens: scoped, expiring, revocable, stored as a SHA-256 only; from the page, the API and `cim token`."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cim.accounts.models import ApiToken
from cim.accounts.roles import Role
from cim.accounts.services import api_token_create, api_token_revoke, token_digest
from cim.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _bearer(raw):
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")


def test_create_stores_only_the_digest_and_expires_by_default(users, settings):
    settings.CIM_API_TOKEN_DAYS = 90
    token, raw = api_token_create(user=users[Role.SALES], name="erp")
    assert raw.startswith("cim_") and token.digest == token_digest(raw) and raw not in token.prefix + token.digest
    assert token.scope == ApiToken.Scope.READ
    assert abs((token.expires_at - timezone.now()) - timedelta(days=90)) < timedelta(minutes=1)
    assert AuditEvent.objects.filter(action="api_token.create", target_id=str(token.pk)).exists()


def test_create_refuses_bad_scope_and_lifetime(users, settings):
    settings.CIM_API_TOKEN_MAX_DAYS = 366
    with pytest.raises(ValidationError) as error:
        api_token_create(user=users[Role.SALES], scope="admin", days=0)
    assert set(error.value.message_dict) == {"scope", "days"}
    with pytest.raises(ValidationError):
        api_token_create(user=users[Role.SALES], days=367)


def test_read_token_reads_but_may_not_write(users):
    _, raw = api_token_create(user=users[Role.SALES], scope=ApiToken.Scope.READ)
    client = _bearer(raw)
    assert client.get("/api/v1/customers").status_code == 200
    response = client.post(
        "/api/v1/customers", {"kind": "person", "display_name": "王小明"}, content_type="application/json"
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "insufficient_scope" and "read-only" in body["message"] and body["details"] == []


def test_write_token_writes(users):
    _, raw = api_token_create(user=users[Role.SALES], scope=ApiToken.Scope.WRITE)
    response = _bearer(raw).post(
        "/api/v1/customers", {"kind": "person", "display_name": "王小明"}, content_type="application/json"
    )
    assert response.status_code == 201


def test_expired_and_revoked_tokens_are_refused_with_their_own_code(users):
    token, raw = api_token_create(user=users[Role.SALES])
    assert _bearer(raw).get("/api/v1/customers").status_code == 200
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save(update_fields=["expires_at"])
    response = _bearer(raw).get("/api/v1/customers")
    assert response.status_code == 401 and response.json()["code"] == "token_expired"

    token, raw = api_token_create(user=users[Role.SALES])
    api_token_revoke(token=token, actor=users[Role.SALES])
    response = _bearer(raw).get("/api/v1/customers")
    assert response.status_code == 401 and response.json()["code"] == "token_revoked"
    assert _bearer("cim_unknown").get("/api/v1/customers").json()["code"] == "not_authenticated"


def test_last_used_is_recorded(users):
    token, raw = api_token_create(user=users[Role.SALES])
    assert token.last_used_at is None
    _bearer(raw).get("/api/v1/customers")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_token_api_lists_creates_and_revokes_own_tokens(users, api_client):
    sales = users[Role.SALES]
    other, _ = api_token_create(user=users[Role.MANAGER])
    client = api_client(sales)  # a write token
    response = client.post(
        "/api/v1/tokens", {"name": "bi", "scope": "read", "days": 7}, content_type="application/json"
    )
    assert response.status_code == 201
    created = response.json()
    assert created["token"].startswith("cim_") and created["scope"] == "read" and created["active"]
    listed = client.get("/api/v1/tokens").json()
    assert {t["id"] for t in listed} == set(ApiToken.objects.filter(user=sales).values_list("pk", flat=True))
    assert all("token" not in t for t in listed)
    # The new read-only token cannot mint or revoke tokens.
    assert _bearer(created["token"]).post("/api/v1/tokens", {}, content_type="application/json").status_code == 403
    response = client.post(f"/api/v1/tokens/{created['id']}/revoke")
    assert response.status_code == 200 and response.json()["revoked_at"] and not response.json()["active"]
    assert client.post(f"/api/v1/tokens/{other.pk}/revoke").status_code == 404  # someone else's
    bad = client.post("/api/v1/tokens", {"scope": "root", "days": 0}, content_type="application/json")
    assert bad.status_code == 422 and {d["field"] for d in bad.json()["details"]} >= {"scope"}


def test_token_page_shows_the_secret_once_then_lists_and_revokes(users):
    sales = users[Role.SALES]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(sales)
    assert client.get(reverse("api_tokens")).status_code == 200
    response = client.post(reverse("api_tokens"), {"name": "erp", "scope": "write", "days": "30"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    raw = response.context["raw"]
    assert raw in response.content.decode() and "shown only this once" in response.content.decode()
    token = ApiToken.objects.get(user=sales)
    assert token.scope == "write" and token.name == "erp"
    page = client.get(reverse("api_tokens")).content.decode()
    assert raw not in page and token.prefix in page
    response = client.post(reverse("api_token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_token_page_errors_are_per_field(users):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(users[Role.SALES])
    response = client.post(reverse("api_tokens"), {"scope": "root", "days": "9999"})
    assert response.status_code == 200 and set(response.context["form"].errors) == {"scope", "days"}
    assert not ApiToken.objects.exists()


def test_cannot_revoke_someone_elses_token_from_the_page(users):
    token, _ = api_token_create(user=users[Role.MANAGER])
    client = Client()
    client.force_login(users[Role.SALES])
    assert client.post(reverse("api_token_revoke", args=[token.pk])).status_code == 404


def test_cli_creates_with_scope_and_lifetime_lists_and_revokes(users):
    out = StringIO()
    call_command("token", "create", "sales-user", "--scope", "write", "--days", "10", "--json", stdout=out)
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    token = ApiToken.objects.get(prefix=report["prefix"])
    assert token.scope == "write" and (token.expires_at - timezone.now()).days in (9, 10)
    out = StringIO()
    call_command("token", "list", "sales-user", stdout=out)
    assert "write" in out.getvalue() and "until" in out.getvalue()
    call_command("token", "revoke", report["prefix"], stdout=StringIO())
    token.refresh_from_db()
    assert token.revoked_at is not None
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="366"):  # "between 1 and 366 days", in the installation's language
        call_command("token", "create", "sales-user", "--days", "0", stdout=StringIO())
