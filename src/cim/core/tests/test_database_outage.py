"""The database away for a moment (PostgreSQL restarting or failing over, SQLite's writer lock timing out): pages
and the API answer 503 with Retry-After, not a 500, so people and clients try again; mistakes stay 500s."""

import pytest
from django.db import OperationalError, connection
from django.test import Client

import cim.customers.api
import cim.customers.views


def away(*args, **kwargs):
    raise OperationalError("database is locked" if connection.vendor == "sqlite" else "server closed the connection")


@pytest.fixture
def database_away(monkeypatch):
    monkeypatch.setattr(cim.customers.api, "customer_list", away)
    monkeypatch.setattr(cim.customers.views, "customer_list", away)


def test_a_page_asks_to_try_again(admin_user, database_away):
    client = Client(headers={"accept-language": "en"})
    client.force_login(admin_user)
    response = client.get("/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "database cannot be reached" in response.content.decode()


def test_the_api_answers_503_in_json(admin_user, database_away, api_client):
    response = api_client(admin_user).get("/api/v1/customers", headers={"accept-language": "zh-hans"})
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["code"] == "unavailable" and "数据库" in response.json()["message"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL raises OperationalError only when away")
def test_a_broken_query_on_sqlite_is_still_an_error(admin_user, monkeypatch, api_client):
    def broken(*args, **kwargs):
        raise OperationalError("no such column: nonsense")

    monkeypatch.setattr(cim.customers.api, "customer_list", broken)
    assert api_client(admin_user).get("/api/v1/customers").status_code == 500
