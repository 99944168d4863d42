"""Behind nginx with TLS (`CIM_HTTPS=true`): what the settings promise, as a client sees it."""

import importlib
import os
import re
from pathlib import Path

import pytest
from django.test import Client

import cim
from cim.config import settings as cim_settings


@pytest.fixture
def https_settings(settings, monkeypatch):
    monkeypatch.setitem(os.environ, "CIM_HTTPS", "true")
    reloaded = importlib.reload(cim_settings)
    for name in (
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "SECURE_REDIRECT_EXEMPT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    ):
        setattr(settings, name, getattr(reloaded, name))
    yield settings
    monkeypatch.delitem(os.environ, "CIM_HTTPS")
    importlib.reload(cim_settings)


def test_plain_http_is_redirected_but_the_probes_are_not(https_settings, db):
    response = Client().get("/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert Client().get("/health").status_code == 200


def test_https_through_the_proxy_gets_hsts_and_secure_cookies(https_settings, db):
    response = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=63072000")
    assert response.cookies["csrftoken"]["secure"]


def test_every_page_carries_a_policy_that_allows_no_inline_script(client):
    header = client.get("/login/")["Content-Security-Policy"]
    policy = dict(directive.strip().split(" ", 1) for directive in header.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_no_template_relies_on_an_inline_event_handler():
    """The policy blocks `onclick="…"` and its kin, so such a handler would silently do nothing (a delete without
    its confirmation); cim.js's data-confirm and data-submit-on-change do the same from a script file."""
    handler = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
    templates = Path(cim.__file__).parent.rglob("templates/**/*.html")
    offenders = [str(path) for path in templates if handler.search(path.read_text())]
    assert not offenders
