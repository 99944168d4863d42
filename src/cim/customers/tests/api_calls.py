"""Calls to the customers REST API shared by its tests, and the shape every error answer has."""

import json
from zoneinfo import ZoneInfo

from cim.customers.models import Customer

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def json_body(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()


def post(client, path, body):
    return client.post(API + path, data=json.dumps(body), content_type="application/json")


def patch(client, path, body):
    return client.patch(API + path, data=json.dumps(body), content_type="application/json")


def assert_error(response, status, code, fields=None):
    assert response.status_code == status, response.content
    body = json_body(response)
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    for detail in body["details"]:
        assert {"field", "message"} <= set(detail)
    if fields is not None:
        assert {d["field"] for d in body["details"]} >= set(fields), body["details"]
    return body


def list_numbers(client, **params) -> list[str]:
    response = client.get(f"{API}/customers", {"limit": 500, **params})
    assert response.status_code == 200, response.content
    body = json_body(response)
    assert body["next_cursor"] is None
    return [row["number"] for row in body["items"]]


def list_names(client, **params) -> set[str]:
    by_number = dict(Customer.objects.values_list("number", "display_name"))
    return {by_number[n] for n in list_numbers(client, **params)}
