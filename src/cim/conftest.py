"""Shared fixtures: one user per role, an API client per role, and the network closed."""

import socket

import pytest
from django.test import Client

from cim.accounts.models import ApiToken, Team
from cim.accounts.roles import Role
from cim.accounts.services import api_token_create, user_create
from cim.accounts.testing import totp_activate
from cim.automation.webhooks import subscriptions_forget


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, request):
    """Tests reach only this machine (loopback and Unix sockets): no test may depend on the internet."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith(("127.", "/")) or host in {"localhost", "::1"}):
            raise OSError(f"network blocked in tests: {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is slow by design; a user per role per test would make the role matrix take minutes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _forget_webhook_subscriptions():
    """A test's transaction is rolled back, never committed: the cached set of subscribed event types would outlive
    its endpoints for a few seconds, and the next test's writes would publish events nobody wants."""
    yield
    subscriptions_forget()


@pytest.fixture
def team(db):
    return Team.objects.create(name="华东销售部")


@pytest.fixture
def other_team(db):
    return Team.objects.create(name="华北销售部")


@pytest.fixture
def make_user(db, team):
    def make(role: str = Role.SALES, username: str | None = None, team=team):
        user, _ = user_create(username=username or f"{role}-user", role=role, password="Correct-Horse-42", team=team)
        if role == Role.ADMINISTRATOR:
            totp_activate(user)  # mandatory for administrators (cim.accounts.middleware)
        return user

    return make


@pytest.fixture
def users(make_user):
    """One user of every role, all in the same team."""
    return {role.value: make_user(role) for role in Role}


@pytest.fixture
def admin_user(users):
    return users[Role.ADMINISTRATOR]


@pytest.fixture
def api_client():
    """A client that sends a bearer token for the given user: `api_client(user).get(...)`."""

    def make(user):
        _, raw = api_token_create(user=user, scope=ApiToken.Scope.WRITE)
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")

    return make
