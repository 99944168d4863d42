"""Errors that Django or ninja produce before our handlers run are JSON with a stable code, too."""

import pytest


@pytest.mark.parametrize("body", ["{bad", "[1, 2]", "null", '"text"', "\xff"])
def test_a_body_that_is_not_a_json_object_is_refused_with_a_field_error(admin_user, api_client, body):
    response = api_client(admin_user).post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert response.json()["details"][0]["field"] == "body"


def test_text_no_database_can_store_is_refused_by_field(admin_user, api_client):
    client = api_client(admin_user)
    body = '{"display_name": "王\\u0000芳", "tags": ["ok", "\\ud800"]}'
    response = client.post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"display_name", "tags.1"}
    assert "NUL" in response.json()["details"][0]["message"]
    response = client.get("/api/v1/customers", {"q": "王\x00"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "q"


def test_wrong_method_is_json_and_keeps_allow(admin_user, api_client):
    response = api_client(admin_user).delete("/api/v1/customers")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_unknown_endpoint_is_json_in_the_callers_language(admin_user, api_client):
    client = api_client(admin_user)
    response = client.get("/api/v1/no-such-thing", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["message"] != "There is no such API endpoint."
