"""The customers REST API's errors: JSON with stable codes, authentication, rights, and hostile input."""

import json
from urllib.parse import quote

import pytest
from django.test import Client

from cim.accounts.models import ApiToken
from cim.accounts.roles import Role
from cim.accounts.services import api_token_create, api_token_revoke
from cim.customers import configuration
from cim.customers.models import Customer, Tag
from cim.customers.tests.api_calls import API, assert_error, json_body, patch, post
from cim.customers.tests.factories import make_customer


@pytest.fixture
def client(admin_user, api_client):
    return api_client(admin_user)


# --- errors ------------------------------------------------------------------------------------------


def test_bad_json_body_is_400(client):
    response = client.post(f"{API}/customers", data="{not json", content_type="application/json")
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"display_name": 5}, ["display_name"]),
        ({"display_name": "x", "birthday": "yesterday"}, ["birthday"]),
        ({"display_name": "x", "owner_id": "abc"}, ["owner_id"]),
        ({"display_name": "x", "phones": {"number": "13812345678"}}, ["phones"]),
        ({"display_name": "x", "phones": [{"number": "13812345678", "is_primary": "maybe"}]}, ["phones.0.is_primary"]),
        ({"display_name": "x", "tags": "VIP"}, ["tags"]),
        ({"display_name": "x", "custom_fields": []}, ["custom_fields"]),
        ({"display_name": "x", "kind": "alien"}, ["kind"]),
        ({"display_name": "x", "value_tier": "gold"}, ["value_tier"]),
        ({"display_name": "x", "emails": [{"address": "a@b.cn", "kind": "secret"}]}, ["emails.0.kind"]),
        ({"display_name": "x" * 201}, ["display_name"]),
        ({"display_name": "x", "notes": "x" * 10_001}, ["notes"]),
        ({"display_name": "x", "tags": ["t"] * 51}, ["tags"]),
        ({"display_name": "x", "phones": [{"number": "1" * 65}]}, ["phones.0.number"]),
        ({"display_name": "x", "phones": [{"number": "12345"}]}, ["phones.0.number"]),
        ({"display_name": "x", "emails": [{"address": "not-an-email"}]}, ["emails.0.address"]),
        ({"display_name": "x", "uscc": "123", "kind": "organization"}, ["uscc"]),
        ({"display_name": "x", "custom_fields": {"nope": 1}}, ["custom_fields.nope"]),
        ({"display_name": ""}, ["display_name"]),
    ],
)
def test_invalid_values_are_422_with_per_field_details(client, body, fields):
    assert_error(post(client, "/customers", body), 422, "validation_error", fields)
    assert not Customer.objects.exists()


def test_error_messages_follow_accept_language(admin_user):
    _, raw = api_token_create(user=admin_user, scope="write")
    zh = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    en = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")
    body = {"display_name": ""}
    zh_body = assert_error(post(zh, "/customers", body), 422, "validation_error")
    en_body = assert_error(post(en, "/customers", body), 422, "validation_error")
    assert zh_body["code"] == en_body["code"]
    assert en_body["details"][0]["message"] == "Enter the customer's name."


def test_missing_or_bad_token_is_401(admin_user):
    assert_error(Client().get(f"{API}/customers"), 401, "not_authenticated")
    assert_error(Client(HTTP_AUTHORIZATION="Bearer cim_nope").get(f"{API}/customers"), 401, "not_authenticated")
    assert_error(Client(HTTP_AUTHORIZATION="Basic YTpi").get(f"{API}/customers"), 401, "not_authenticated")
    assert_error(Client().post(f"{API}/customers", {}, content_type="application/json"), 401, "not_authenticated")


def test_revoked_token_and_inactive_user_are_401(admin_user):
    token, raw = api_token_create(user=admin_user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{API}/customers").status_code == 200
    api_token_revoke(token=token, actor=admin_user)
    assert_error(client.get(f"{API}/customers"), 401, "token_revoked")
    _, raw = api_token_create(user=admin_user)
    admin_user.is_active = False
    admin_user.save()
    assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(f"{API}/customers"), 401, "not_authenticated")
    assert ApiToken.objects.count() == 2


def test_role_without_the_right_is_403(api_client, users, admin_user):
    customer = make_customer(admin_user)
    analyst = api_client(users[Role.ANALYST])
    assert_error(post(analyst, "/customers", {"display_name": "x"}), 403, "permission_denied")
    assert_error(patch(analyst, f"/customers/{customer.number}", {"alias": "x"}), 403, "permission_denied")
    marketing = api_client(users[Role.MARKETING])
    assert_error(post(marketing, f"/customers/{customer.number}/archive", {}), 403, "permission_denied")
    assert_error(post(marketing, "/tags", {"name": "x"}), 403, "permission_denied")
    assert not Tag.objects.exists()
    assert Customer.objects.get().status == "active"


# --- hostile input never causes a server error -------------------------------------------------------

HOSTILE = [
    None,
    "",
    " ",
    "x" * 100_000,
    "😀" * 60,
    "\u202eevil\u202c",
    "\u200f\u200e\u200b",
    "a\x00b",
    "\x00",
    "\ud800",
    "㍿" * 60,  # NFKC turns each into four characters
    "ﷺ" * 12,  # and this into eighteen
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "%s%n%x",
    "../../etc/passwd",
    "١٢٣٤٥٦٧٨٩٠١",
    0,
    -1,
    2**63,
    1e308,
    True,
    [],
    [None],
    {},
    {"$gt": ""},
    [[[[[]]]]],
    {"a": {"b": {"c": {"d": {}}}}},
    "123",
    "null",
]


# What each field gets: the values that got past validation into services and databases before.
HOSTILE_FIELD = [None, "x" * 100_000, "a\x00b", "\ud800", "㍿" * 60, "😀" * 60, "\u202e", 2**63, [], {}, "123", True]


def _variants(valid: dict) -> list:
    """Whole-body garbage, then the valid body with each field (and each nested field) set to a hostile value."""
    bodies: list = [*HOSTILE, [valid], valid | {"unexpected": "field"}]
    for field, value in valid.items():
        bodies += [valid | {field: bad} for bad in HOSTILE_FIELD]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            bodies += [valid | {field: [value[0] | {sub: bad}]} for sub in value[0] for bad in HOSTILE_FIELD]
        elif isinstance(value, list):
            bodies += [valid | {field: [bad]} for bad in HOSTILE]
        elif isinstance(value, dict):
            bodies += [valid | {field: value | {sub: bad}} for sub in value for bad in HOSTILE_FIELD]
    return bodies


@pytest.fixture
def hostile_targets(admin_user):
    configuration.custom_field_create(key="note", label_zh="备注", label_en="Note", field_type="text", actor=admin_user)
    configuration.custom_field_create(
        key="level", label_zh="等级", label_en="Level", field_type="choice", choices=["金"], actor=admin_user
    )
    customer = make_customer(admin_user)
    tag = configuration.tag_create(name="VIP", actor=admin_user)
    return customer, tag


def _customer_body():
    return {
        "display_name": "张三",
        "family_name": "张",
        "alias": "老张",
        "company": "某公司",
        "job_title": "经理",
        "notes": "备注",
        "kind": "person",
        "birthday": "1990-01-01",
        "owner_id": None,
        "custom_fields": {"note": "x", "level": "金"},
        "tags": ["VIP"],
        "phones": [{"number": "13812345678", "is_primary": True}],
        "emails": [{"address": "a@example.com"}],
        "addresses": [{"province": "北京市", "street": "长安街1号", "postal_code": "100000"}],
    }


WRITES = {
    "create": ("post", "/customers", _customer_body()),
    "update": ("patch", "/customers/{number}", _customer_body()),
    "archive": ("post", "/customers/{number}/archive", {"reason": "重复"}),
    "restore": ("post", "/customers/{number}/restore", {}),
    "bulk-tag": ("post", "/customers/bulk-tag", {"numbers": ["{number}"], "add": ["新"], "remove": ["VIP"]}),
    "tag-create": ("post", "/tags", {"name": "新标签", "color": "#123456", "description": "说明"}),
    "tag-update": ("patch", "/tags/{tag}", {"name": "改名", "color": "#654321", "description": "说明"}),
    "field-create": (
        "post",
        "/custom-fields",
        {"key": "k", "label_zh": "甲", "label_en": "A", "field_type": "choice", "choices": ["a"], "required": False},
    ),
    "field-update": (
        "patch",
        "/custom-fields/note",
        {"label_zh": "乙", "label_en": "B", "choices": ["b"], "required": False, "position": 1, "is_active": True},
    ),
}
RAW_BODIES = ["{", "[", '{"a":', "\x00", "\xff\xfe", "null", "1", '"x"', '{"a":1}' * 1000, "[" * 10_000]


@pytest.mark.parametrize("write", list(WRITES))
def test_hostile_payloads_never_cause_a_server_error(client, hostile_targets, write):
    customer, tag = hostile_targets
    method, template, valid = WRITES[write]
    path = API + template.format(number=customer.number, tag=tag.pk)
    valid = json.loads(json.dumps(valid).replace("{number}", customer.number))
    failures = []
    for body in _variants(valid) + RAW_BODIES:
        data = body if body in RAW_BODIES else json.dumps(body)
        response = getattr(client, method)(path, data=data, content_type="application/json")
        if response.status_code >= 500 or (response.status_code >= 400 and "code" not in json_body(response)):
            changed = {k: v for k, v in body.items() if valid.get(k) != v} if isinstance(body, dict) else body
            failures.append((repr(changed)[:200], response.status_code))
    assert getattr(client, method)(path, data="display_name=x", content_type="text/plain").status_code < 500
    assert not failures, "\n".join(map(repr, failures[:40]))


@pytest.mark.parametrize(
    "params",
    [
        {"q": "\x00"},
        {"q": "张\x00三"},
        {"q": "%_%"},
        {"q": "😀"},
        {"tag": "a\x00b"},
        {"tag": ["x"] * 11},
        {"cf": "le\x00vel:x"},
        {"cf": "level:\x00"},
        {"cf": ":"},
        {"cf": "a" * 5000 + ":b"},
        {"owner_id": 2**70},
        {"team_id": 2**63},
        {"owner_id": "-1"},
        {"team_id": "1e3"},
        {"birthday_from": "9999-99-99"},
        {"created_to": "0000-01-01"},
        {"sort": "\x00"},
        {"limit": "\x00"},
        {"cursor": "\x00"},
        {"status": ["archived", "any"]},
    ],
)
def test_hostile_list_parameters_never_cause_a_server_error(client, hostile_targets, params):
    response = client.get(f"{API}/customers", params)
    assert response.status_code < 500, response.content[:300]
    assert "code" in json_body(response) or "items" in json_body(response)


@pytest.mark.parametrize("number", ["\x00", "C2026-000001-1\x00", "%00", "😀", "a" * 5000, "\u202e"])
def test_hostile_path_parameters_never_cause_a_server_error(client, hostile_targets, number):
    path = quote(number, safe="")
    for method, url in [
        ("get", f"/customers/{path}"),
        ("patch", f"/customers/{path}"),
        ("post", f"/customers/{path}/archive"),
        ("post", f"/customers/{path}/restore"),
        ("patch", f"/tags/{path}"),
        ("patch", f"/tags/{2**70}"),
        ("patch", f"/custom-fields/{path}"),
    ]:
        if method == "get":
            response = client.get(API + url)
        else:
            response = getattr(client, method)(API + url, data="{}", content_type="application/json")
        assert response.status_code < 500, (method, url, response.content[:300])
