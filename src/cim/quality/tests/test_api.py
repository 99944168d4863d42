"""Duplicates through the API: flagged on create, refused in strict mode, reviewed, merged (with a dry run
that returns the resulting record) and unmerged."""

import json

import pytest

from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer
from cim.quality.models import DuplicateCandidate

NEW = {"display_name": "張三", "phones": [{"number": "+86 138-1234-5678"}], "birthday": "1990-01-02"}


@pytest.fixture
def zhangsan(admin_user):
    return make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_a_create_reports_and_records_its_likely_duplicates(api_client, admin_user, zhangsan):
    response = post(api_client(admin_user), "/api/v1/customers", NEW)
    assert response.status_code == 201
    found = response.json()["possible_duplicates"]
    assert [d["customer"]["number"] for d in found] == [zhangsan.number]
    assert found[0]["probability"] > 0.9 and found[0]["contributions"]["phones"] > 0
    pair = DuplicateCandidate.objects.get()
    assert (pair.other, pair.detected_by, pair.status) == (zhangsan, "api", "open")


def test_a_strict_create_refuses_likely_duplicates_and_writes_nothing(api_client, admin_user, zhangsan):
    response = post(api_client(admin_user), "/api/v1/customers?strict=true", NEW)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "possible_duplicates" and body["details"][0]["message"] == zhangsan.number
    assert Customer.objects.count() == 1


def test_a_strict_create_never_names_a_customer_outside_the_callers_scope(api_client, users, zhangsan):
    response = post(api_client(users["sales"]), "/api/v1/customers?strict=true", NEW)
    assert response.status_code == 409
    assert response.json()["details"] == [
        {"field": "", "code": "possible_duplicate_out_of_scope", "message": "", "probability": pytest.approx(1, 0.1)}
    ]


def test_namesakes_with_other_contacts_are_not_duplicates(api_client, admin_user, zhangsan):
    other = {"display_name": "张三", "phones": [{"number": "13900009999"}], "birthday": "1975-06-30"}
    response = post(api_client(admin_user), "/api/v1/customers?strict=true", other)
    assert response.status_code == 201 and response.json()["possible_duplicates"] == []


def test_review_merge_dry_run_merge_and_unmerge(api_client, admin_user, zhangsan):
    client = api_client(admin_user)
    twin = post(client, "/api/v1/customers", {**NEW, "company": "华为"}).json()
    pairs = client.get("/api/v1/duplicates").json()
    assert [(p["customer"]["number"], p["other"]["number"]) for p in pairs] == [(twin["number"], zhangsan.number)]

    preview = {"survivor": zhangsan.number, "duplicates": [twin["number"]], "dry_run": True}
    dry = post(client, "/api/v1/merges", preview).json()
    assert dry["id"] is None and dry["values"]["company"] == "华为"
    assert dry["provenance"]["company"] == twin["number"] and dry["provenance"]["display_name"] == zhangsan.number
    assert Customer.objects.get(number=twin["number"]).status == "active"

    merged = post(client, "/api/v1/merges", {**preview, "dry_run": False})
    assert merged.status_code == 201
    assert client.get(f"/api/v1/customers/{zhangsan.number}").json()["company"] == "华为"
    assert client.get("/api/v1/duplicates").json() == []

    undone = post(client, f"/api/v1/merges/{merged.json()['id']}/unmerge", {})
    assert undone.status_code == 200 and undone.json()["undone"]
    assert client.get(f"/api/v1/customers/{zhangsan.number}").json()["company"] == ""
    assert Customer.objects.get(number=twin["number"]).status == "active"
    assert len(client.get("/api/v1/duplicates").json()) == 1


def test_a_pair_marked_distinct_leaves_the_queue(api_client, admin_user, zhangsan):
    client = api_client(admin_user)
    post(client, "/api/v1/customers", NEW)
    pair = client.get("/api/v1/duplicates").json()[0]
    response = post(client, f"/api/v1/duplicates/{pair['id']}", {"status": "distinct"})
    assert response.status_code == 200 and response.json()["status"] == "distinct"
    assert client.get("/api/v1/duplicates").json() == []
    assert [p["id"] for p in client.get("/api/v1/duplicates?status=distinct").json()] == [pair["id"]]


def test_a_merge_choice_must_name_one_of_the_merged(api_client, admin_user, zhangsan):
    other = make_customer(admin_user, display_name="李四")
    body = {"survivor": zhangsan.number, "duplicates": [other.number], "choices": {"display_name": "C2026-999999-9"}}
    response = post(api_client(admin_user), "/api/v1/merges", body)
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "choices.display_name"


def test_a_customers_duplicates_are_found_live(api_client, admin_user, zhangsan):
    twin = make_customer(admin_user, display_name="章三", phones=[{"number": "13812345678"}])
    found = api_client(admin_user).get(f"/api/v1/customers/{zhangsan.number}/duplicates").json()
    assert [d["customer"]["number"] for d in found] == [twin.number]
    assert set(found[0]["contributions"]) == {"name", "birthday", "phones", "emails", "address", "company", "gender"}


def test_a_scan_is_queued_plain_or_as_a_one_to_one_link(api_client, admin_user, zhangsan):
    from django_tasks_db.models import DBTaskResult

    from cim.customers.models import ExternalId

    ExternalId.objects.create(customer=zhangsan, system="shop", value="S-1")
    other = make_customer(admin_user, display_name="王五")
    ExternalId.objects.create(customer=other, system="crm", value="C-1")
    client = api_client(admin_user)
    first = client.post("/api/v1/duplicates/scan", content_type="application/json")  # no body: every customer
    assert first.status_code == 202, first.content
    assert post(client, "/api/v1/duplicates/scan", {"link": ["shop", "crm"], "train": False}).status_code == 202
    queued = [task.args_kwargs["kwargs"] for task in DBTaskResult.objects.order_by("enqueued_at")]
    assert [q.get("link") for q in queued] == [None, ["shop", "crm"]]
    for body, message in [
        ({"link": ["shop", "shop"]}, "two different systems"),
        ({"link": ["shop", "nowhere"]}, "nowhere"),
        ({"link": ["shop"]}, ""),
    ]:
        response = post(client, "/api/v1/duplicates/scan", body)
        assert response.status_code == 422 and message in response.content.decode()
    assert DBTaskResult.objects.count() == 2
