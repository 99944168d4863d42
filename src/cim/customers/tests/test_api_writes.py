"""The customers REST API's writes: read, create, update, archive, tags and custom fields."""

import pytest

from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.audit.models import AuditEvent
from cim.customers import configuration
from cim.customers.models import Customer, CustomFieldDefinition
from cim.customers.tests.api_calls import API, assert_error, json_body, list_names, list_numbers, patch, post
from cim.customers.tests.factories import make_customer


@pytest.fixture
def client(admin_user, api_client):
    return api_client(admin_user)


# --- read, create, update, archive -------------------------------------------------------------------


def test_create_returns_201_with_normalised_values(client):
    response = post(
        client,
        "/customers",
        {
            "display_name": " 张三 ",
            "phones": [{"number": "+86 138-1234-5678"}, {"number": "8613812345678"}],
            "emails": [{"address": " ZS@Example.COM "}],
            "tags": ["VIP"],
            "birthday": "1990-05-01",
        },
    )
    assert response.status_code == 201, response.content
    body = json_body(response)
    assert body["display_name"] == "张三"
    assert body["phones"] == [
        {
            "number": "+8613812345678",
            "raw": "+86 138-1234-5678",
            "kind": "mobile",
            "is_primary": True,
            "is_verified": False,
        }
    ]
    assert body["emails"][0]["address"] == "zs@example.com"
    assert body["tags"] == ["VIP"]
    assert body["birthday"] == "1990-05-01"
    assert Customer.objects.get().number == body["number"]


def test_read_by_number_in_any_case(client, admin_user):
    customer = make_customer(admin_user, display_name="李四")
    for number in (customer.number, customer.number.lower()):
        response = client.get(f"{API}/customers/{number}")
        assert response.status_code == 200
        assert json_body(response)["number"] == customer.number


def test_read_invalid_number_is_400_and_unknown_is_404(client, admin_user):
    customer = make_customer(admin_user)
    assert_error(client.get(f"{API}/customers/hello"), 400, "invalid_customer_number", ["number"])
    assert_error(client.get(f"{API}/customers/{customer.number[:-1]}9x"), 400, "invalid_customer_number")
    prefix, sequence, _check = customer.number.split("-")
    unknown = f"{prefix}-{sequence}"  # a valid shape without check digit that was never issued
    assert_error(client.get(f"{API}/customers/{unknown}"), 404, "not_found")


def test_read_outside_scope_is_404(api_client, users, admin_user, other_team):
    customer = make_customer(admin_user, owner_id=users[Role.MANAGER].pk, team_id=other_team.pk)
    Customer.objects.filter(pk=customer.pk).update(team=other_team, owner=None)
    assert_error(api_client(users[Role.SALES]).get(f"{API}/customers/{customer.number}"), 404, "not_found")


def test_patch_changes_only_the_fields_sent(client, admin_user):
    customer = make_customer(admin_user, display_name="张三", job_title="经理", phones=[{"number": "13812345678"}])
    response = patch(client, f"/customers/{customer.number.lower()}", {"job_title": "总监"})
    assert response.status_code == 200, response.content
    body = json_body(response)
    assert (body["display_name"], body["job_title"]) == ("张三", "总监")
    assert [p["number"] for p in body["phones"]] == ["+8613812345678"]
    event = AuditEvent.objects.get(action="customer.update")
    assert event.fields == ["job_title"]


def test_patch_with_errors_is_422_and_changes_nothing(client, admin_user):
    customer = make_customer(admin_user, display_name="张三")
    response = patch(client, f"/customers/{customer.number}", {"display_name": "李四", "emails": [{"address": "x"}]})
    assert_error(response, 422, "validation_error", ["emails.0.address"])
    customer.refresh_from_db()
    assert customer.display_name == "张三"


def test_archive_and_restore(client, admin_user):
    customer = make_customer(admin_user)
    response = post(client, f"/customers/{customer.number}/archive", {"reason": "重复"})
    assert response.status_code == 200
    assert json_body(response)["status"] == "archived"
    assert list_numbers(client) == []
    assert AuditEvent.objects.get(action="customer.archive").note == "重复"
    response = client.post(f"{API}/customers/{customer.number}/restore")
    assert response.status_code == 200
    assert json_body(response)["status"] == "active"
    assert list_numbers(client) == [customer.number]


def test_bulk_tag(client, admin_user, api_client, users, other_team):
    a = make_customer(admin_user, display_name="甲")
    b = make_customer(admin_user, display_name="乙", tags=["旧"])
    hidden = make_customer(admin_user, display_name="丙")
    Customer.objects.filter(pk=hidden.pk).update(owner=None, team=other_team)
    response = post(
        client, "/customers/bulk-tag", {"numbers": [a.number.lower(), f" {b.number} ", "C-1"], "add": ["新"]}
    )
    assert response.status_code == 200, response.content
    assert json_body(response) == {"changed": 2}
    response = post(client, "/customers/bulk-tag", {"numbers": [a.number, b.number], "remove": ["旧"]})
    assert json_body(response) == {"changed": 1}
    assert list_names(client, tag="新") == {"甲", "乙"}
    assert list_names(client, tag="旧") == set()
    # Customers outside the caller's scope are not touched.
    sales = api_client(users[Role.SALES])
    assert json_body(post(sales, "/customers/bulk-tag", {"numbers": [hidden.number], "add": ["x"]})) == {"changed": 0}
    assert_error(post(client, "/customers/bulk-tag", {"numbers": []}), 422, "validation_error", ["numbers"])


def test_tags_endpoints(client):
    response = post(client, "/tags", {"name": " 重要客户 ", "color": "#ff0000"})
    assert response.status_code == 201, response.content
    tag = json_body(response)
    assert (tag["name"], tag["color"]) == ("重要客户", "#ff0000")
    assert_error(post(client, "/tags", {"name": "重要客户"}), 422, "validation_error", ["name"])
    assert_error(post(client, "/tags", {"name": "x", "color": "red"}), 422, "validation_error", ["color"])
    response = patch(client, f"/tags/{tag['id']}", {"description": "年消费十万以上"})
    assert json_body(response)["description"] == "年消费十万以上"
    assert json_body(response)["name"] == "重要客户"
    assert [t["name"] for t in json_body(client.get(f"{API}/tags"))] == ["重要客户"]
    assert_error(patch(client, "/tags/999999", {"name": "x"}), 404, "not_found")


def test_custom_field_endpoints(client):
    field = {"key": "level", "label_zh": "等级", "label_en": "Level", "field_type": "choice", "choices": ["金", "银"]}
    response = post(client, "/custom-fields", field)
    assert response.status_code == 201, response.content
    assert json_body(response)["choices"] == ["金", "银"]
    assert_error(post(client, "/custom-fields", field), 422, "validation_error", ["key"])
    assert_error(post(client, "/custom-fields", field | {"key": "Bad Key"}), 422, "validation_error", ["key"])
    assert_error(post(client, "/custom-fields", field | {"key": "x", "choices": []}), 422, "validation_error")
    response = patch(client, "/custom-fields/level", {"required": True, "choices": ["金", "银", "铜"]})
    assert json_body(response)["required"] is True
    assert json_body(response)["choices"] == ["金", "银", "铜"]
    assert [f["key"] for f in json_body(client.get(f"{API}/custom-fields"))] == ["level"]
    assert_error(patch(client, "/custom-fields/nope", {"required": True}), 404, "not_found")
    # The new definition is enforced on customers at once.
    assert_error(post(client, "/customers", {"display_name": "x"}), 422, "validation_error", ["custom_fields.level"])
    assert post(client, "/customers", {"display_name": "x", "custom_fields": {"level": "铜"}}).status_code == 201


def test_custom_field_definitions_deactivated_through_the_api_stop_validating(client, admin_user):
    configuration.custom_field_create(
        key="level", label_zh="等级", label_en="Level", field_type="choice", choices=["金"], actor=admin_user
    )
    patch(client, "/custom-fields/level", {"is_active": False})
    assert CustomFieldDefinition.objects.get().is_active is False
    assert_error(
        post(client, "/customers", {"display_name": "x", "custom_fields": {"level": "金"}}),
        422,
        "validation_error",
        ["custom_fields.level"],
    )
    assert json_body(client.get(f"{API}/custom-fields"))[0]["key"] == "level"  # kept, so stored values keep meaning


def test_handing_a_customer_outside_ones_scope_still_answers_with_it(api_client, users, other_team):
    outsider = user_create(username="sales-north", role=Role.SALES, password="Correct-Horse-42", team=other_team)[0]
    sales = api_client(users[Role.SALES])
    body = {"display_name": "转交客户", "owner_id": outsider.pk, "team_id": other_team.pk}
    response = post(sales, "/customers", body)
    assert response.status_code == 201, response.content
    assert json_body(response)["owner_id"] == outsider.pk
    mine = json_body(post(sales, "/customers", {"display_name": "我的"}))
    response = patch(sales, f"/customers/{mine['number']}", {"owner_id": outsider.pk, "team_id": other_team.pk})
    assert response.status_code == 200, response.content
    assert json_body(response)["owner_id"] == outsider.pk
    assert Customer.objects.count() == 2
    assert_error(sales.get(f"{API}/customers/{mine['number']}"), 404, "not_found")
