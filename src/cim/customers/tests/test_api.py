"""The customers REST API: filters, search, cursor pages, writes, and errors that are JSON with stable codes."""

import base64
import json
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cim.accounts.models import ApiToken
from cim.accounts.roles import Role
from cim.accounts.services import api_token_create, api_token_revoke, user_create
from cim.audit.models import AuditEvent
from cim.customers import configuration
from cim.customers.filters import SORTS, CustomerFilter
from cim.customers.models import Customer, CustomFieldDefinition, Tag
from cim.customers.selectors import customer_list
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(admin_user, api_client):
    return api_client(admin_user)


def _json(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()


def _post(client, path, body):
    return client.post(API + path, data=json.dumps(body), content_type="application/json")


def _patch(client, path, body):
    return client.patch(API + path, data=json.dumps(body), content_type="application/json")


def _list(client, **params) -> list[str]:
    response = client.get(f"{API}/customers", {"limit": 500, **params})
    assert response.status_code == 200, response.content
    body = _json(response)
    assert body["next_cursor"] is None
    return [row["number"] for row in body["items"]]


def _names(client, **params) -> set[str]:
    by_number = dict(Customer.objects.values_list("number", "display_name"))
    return {by_number[n] for n in _list(client, **params)}


def _assert_error(response, status, code, fields=None):
    assert response.status_code == status, response.content
    body = _json(response)
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    for detail in body["details"]:
        assert {"field", "message"} <= set(detail)
    if fields is not None:
        assert {d["field"] for d in body["details"]} >= set(fields), body["details"]
    return body


# --- list and filters --------------------------------------------------------------------------------


@pytest.fixture
def custom_fields(admin_user):
    def define(key, field_type, choices=()):
        return configuration.custom_field_create(
            key=key, label_zh=key, label_en=key, field_type=field_type, choices=list(choices), actor=admin_user
        )

    define("level", "choice", ["gold", "silver"])
    define("budget", "number")
    define("hobbies", "multi_choice", ["basketball", "football", "reading"])
    define("since", "date")


@pytest.fixture
def catalogue(admin_user, users, team, other_team, custom_fields):
    sales = users[Role.SALES]
    made = {
        "甲": make_customer(
            admin_user,
            display_name="甲",
            customer_type="consumer",
            source_channel="wechat",
            value_tier="vip",
            region="east",
            lifecycle_stage="loyal",
            gender="female",
            birthday="1990-05-01",
            tags=["VIP", "华东"],
            owner_id=sales.pk,
            team_id=team.pk,
            custom_fields={"level": "gold", "budget": 100, "hobbies": ["basketball", "reading"]},
        ),
        "乙": make_customer(
            admin_user,
            display_name="乙",
            customer_type="business",
            source_channel="website",
            value_tier="low",
            region="north",
            lifecycle_stage="new",
            gender="male",
            birthday="1985-12-31",
            tags=["VIP"],
            team_id=other_team.pk,
            custom_fields={"level": "silver", "budget": 99.5, "hobbies": ["football"]},
        ),
        "丙": make_customer(
            admin_user,
            display_name="丙",
            kind="organization",
            industry="technology",
            company_size="50-199",
            customer_type="business",
            tags=["华东"],
            custom_fields={"budget": 100.0, "hobbies": ["reading"]},
        ),
        "丁": make_customer(admin_user, display_name="丁", status="inactive", industry="retail"),
    }
    archived = make_customer(admin_user, display_name="戊")
    customer_archive(customer=archived, actor=admin_user)
    made["戊"] = archived
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"甲", "乙", "丙", "丁"}),
        ({"status": "archived"}, {"戊"}),
        ({"status": "inactive"}, {"丁"}),
        ({"status": "active"}, {"甲", "乙", "丙"}),
        ({"status": "any"}, {"甲", "乙", "丙", "丁", "戊"}),
        ({"kind": "organization"}, {"丙"}),
        ({"kind": "person"}, {"甲", "乙", "丁"}),
        ({"customer_type": "business"}, {"乙", "丙"}),
        ({"source_channel": "wechat"}, {"甲"}),
        ({"value_tier": "low"}, {"乙"}),
        ({"region": "north"}, {"乙"}),
        ({"industry": "retail"}, {"丁"}),
        ({"lifecycle_stage": "loyal"}, {"甲"}),
        ({"lifecycle_stage": "potential"}, {"丙", "丁"}),
        ({"gender": "male"}, {"乙"}),
        ({"tag": "VIP"}, {"甲", "乙"}),
        ({"tag": ["VIP", "华东"]}, {"甲"}),  # every tag must be present
        ({"tag": ["VIP", "不存在"]}, set()),
        ({"birthday_from": "1986-01-01"}, {"甲"}),
        ({"birthday_to": "1985-12-31"}, {"乙"}),
        ({"birthday_from": "1980-01-01", "birthday_to": "1995-01-01"}, {"甲", "乙"}),
        ({"cf": "level:gold"}, {"甲"}),
        ({"cf": "level:bronze"}, set()),
        ({"cf": "budget:100"}, {"甲", "丙"}),
        ({"cf": "budget:99.5"}, {"乙"}),
        ({"cf": "budget:lots"}, set()),
        ({"cf": "hobbies:reading"}, {"甲", "丙"}),
        ({"cf": "hobbies:read"}, set()),  # a whole choice, not a substring of one
        ({"cf": ["hobbies:reading", "level:gold"]}, {"甲"}),
        ({"cf": "nosuchfield:1"}, set()),
        ({"q": "甲"}, {"甲"}),
        ({"q": "甲", "status": "any", "kind": "organization"}, set()),
    ],
)
def test_list_filters(client, catalogue, params, expected):
    assert _names(client, **params) == expected


def test_owner_and_team_filters(client, catalogue, users, team, other_team):
    assert _names(client, owner_id=users[Role.SALES].pk) == {"甲"}
    assert _names(client, team_id=other_team.pk) == {"乙"}
    assert "乙" not in _names(client, team_id=team.pk)


def test_created_and_updated_date_ranges_are_whole_local_days(client, catalogue):
    def at(day, hour):
        return datetime(2025, 3, day, hour, 30, tzinfo=SHANGHAI)

    # 23:30 and 00:30 Shanghai time sit on different UTC days than their local ones.
    Customer.objects.filter(display_name="甲").update(created_at=at(1, 0), updated_at=at(10, 23))
    Customer.objects.filter(display_name="乙").update(created_at=at(1, 23), updated_at=at(11, 0))
    Customer.objects.filter(display_name="丙").update(created_at=at(2, 0), updated_at=at(12, 12))
    assert _names(client, created_from="2025-03-01", created_to="2025-03-01") == {"甲", "乙"}
    assert _names(client, created_from="2025-03-02", created_to="2025-03-02") == {"丙"}
    assert _names(client, created_to="2025-03-01") == {"甲", "乙"}
    assert _names(client, updated_from="2025-03-11", updated_to="2025-03-12") == {"乙", "丙"}
    assert _names(client, updated_to="2025-03-10") == {"甲"}


def test_invalid_filter_values_are_422_with_the_field(client):
    _assert_error(client.get(f"{API}/customers", {"kind": "alien"}), 422, "validation_error", ["kind"])
    _assert_error(client.get(f"{API}/customers", {"sort": "salary"}), 422, "validation_error", ["sort"])
    _assert_error(client.get(f"{API}/customers", {"created_from": "yesterday"}), 422, "validation_error")
    _assert_error(client.get(f"{API}/customers", {"limit": 0}), 422, "validation_error", ["limit"])
    _assert_error(client.get(f"{API}/customers", {"limit": 501}), 422, "validation_error", ["limit"])
    _assert_error(client.get(f"{API}/customers", {"q": "x" * 201}), 422, "validation_error", ["q"])


@pytest.fixture
def searchable(admin_user):
    make_customer(
        admin_user, display_name="张三", phones=[{"number": "13812345678"}], emails=[{"address": "zs@qq.com"}]
    )
    make_customer(admin_user, display_name="张三丰", english_name="Sanfeng Zhang")
    make_customer(admin_user, display_name="李四", phones=[{"number": "010-62345678"}])
    make_customer(admin_user, display_name="John Smith")


@pytest.mark.parametrize(
    "q", ["张", "张三", "張三", "zhangsan", "zs", "5678", "138 1234 5678", "zs@qq.com", "ZS@QQ.COM", "smith", "张 5678"]
)
def test_q_gives_the_same_results_as_the_selector(client, admin_user, searchable, q):
    expected = [c.number for c in customer_list(user=admin_user, filters=CustomerFilter(q=q))]
    assert expected
    assert _list(client, q=q) == expected


def test_list_rows_show_primary_contacts_and_tags(client, admin_user):
    customer = make_customer(
        admin_user,
        phones=[{"number": "13812345678"}, {"number": "13912345678", "is_primary": True}],
        emails=[{"address": "A@Example.com"}],
        tags=["b", "a"],
    )
    row = _json(client.get(f"{API}/customers"))["items"][0]
    assert row["number"] == customer.number
    assert row["primary_phone"] == "+8613912345678"
    assert row["primary_email"] == "a@example.com"
    assert row["tags"] == ["a", "b"]


# --- cursor pagination -------------------------------------------------------------------------------


@pytest.fixture
def pageable(admin_user):
    names = ["王五", "张三", "张三", "Adam", "adam", "李四", "赵六", "张三", "Zed"]
    customers = [make_customer(admin_user, display_name=n) for n in names]
    # Ties on updated_at, and timestamps with microseconds, are what break naive cursors.
    same = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=SHANGHAI)
    Customer.objects.filter(pk__in=[c.pk for c in customers[:3]]).update(updated_at=same)
    for i, customer in enumerate(customers[3:]):
        Customer.objects.filter(pk=customer.pk).update(updated_at=same + timedelta(microseconds=37 * (i + 1)))
    return customers


@pytest.mark.parametrize("sort", list(SORTS))
def test_walking_every_page_returns_each_customer_once_in_order(client, admin_user, pageable, sort):
    expected = [c.number for c in customer_list(user=admin_user, filters=CustomerFilter(sort=sort))]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, "sort": sort} | ({"cursor": cursor} if cursor else {})
        body = _json(client.get(f"{API}/customers", params))
        assert len(body["items"]) <= 2
        seen += [row["number"] for row in body["items"]]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
        assert pages < 20
    assert seen == expected
    assert len(seen) == len(set(seen)) == len(pageable)


def test_cursor_is_stable_under_inserts(client, admin_user, pageable):
    first = _json(client.get(f"{API}/customers", {"limit": 4}))
    make_customer(admin_user, display_name="新来的")
    rest = _json(client.get(f"{API}/customers", {"limit": 500, "cursor": first["next_cursor"]}))
    numbers = [r["number"] for r in first["items"] + rest["items"]]
    assert sorted(numbers) == sorted(c.number for c in pageable)


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("-created", "zzz"),
        ("-created", "!!!!"),
        ("-created", "%00"),
        ("-created", _cursor({"id": 1})),
        ("-created", _cursor([])),
        ("-created", _cursor([1, 2])),
        ("-created", _cursor(["abc"])),
        ("-created", _cursor([{"a": 1}])),
        ("-created", _cursor([[1]])),
        ("-created", _cursor([None])),
        ("-created", _cursor([True])),
        ("-created", _cursor([2**70])),
        ("-updated", _cursor(["not a date", 1])),
        ("-updated", _cursor([12345, 1])),
        ("name", _cursor([{"x": 1}, 1])),
        ("name", _cursor(["a\x00b", 1])),
        ("number", _cursor([None])),
    ],
)
def test_bad_cursor_is_400_json(client, pageable, sort, cursor):
    _assert_error(client.get(f"{API}/customers", {"sort": sort, "cursor": cursor}), 400, "bad_request")


def test_list_query_count_does_not_grow_with_rows(client, admin_user, custom_fields, django_assert_max_num_queries):
    def count(n):
        for i in range(n - Customer.objects.count()):
            make_customer(
                admin_user,
                display_name=f"客户{i}",
                phones=[{"number": f"1381234{i:04d}"}],
                emails=[{"address": f"c{i}@example.com"}],
                tags=["VIP", f"t{i % 3}"],
                custom_fields={"level": "gold"},
            )
        params = {"limit": 50, "tag": "VIP", "cf": "level:gold", "q": "客户"}
        client.get(f"{API}/customers", params)  # the token's last-used time is touched once a minute
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{API}/customers", params)
        assert len(_json(response)["items"]) == n
        return len(queries)

    assert count(5) == count(30)
    with django_assert_max_num_queries(8):
        client.get(f"{API}/customers", {"limit": 50})


# --- read, create, update, archive -------------------------------------------------------------------


def test_create_returns_201_with_normalised_values(client):
    response = _post(
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
    body = _json(response)
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
        assert _json(response)["number"] == customer.number


def test_read_invalid_number_is_400_and_unknown_is_404(client, admin_user):
    customer = make_customer(admin_user)
    _assert_error(client.get(f"{API}/customers/hello"), 400, "invalid_customer_number", ["number"])
    _assert_error(client.get(f"{API}/customers/{customer.number[:-1]}9x"), 400, "invalid_customer_number")
    prefix, sequence, _check = customer.number.split("-")
    unknown = f"{prefix}-{sequence}"  # a valid shape without check digit that was never issued
    _assert_error(client.get(f"{API}/customers/{unknown}"), 404, "not_found")


def test_read_outside_scope_is_404(api_client, users, admin_user, other_team):
    customer = make_customer(admin_user, owner_id=users[Role.MANAGER].pk, team_id=other_team.pk)
    Customer.objects.filter(pk=customer.pk).update(team=other_team, owner=None)
    _assert_error(api_client(users[Role.SALES]).get(f"{API}/customers/{customer.number}"), 404, "not_found")


def test_patch_changes_only_the_fields_sent(client, admin_user):
    customer = make_customer(admin_user, display_name="张三", job_title="经理", phones=[{"number": "13812345678"}])
    response = _patch(client, f"/customers/{customer.number.lower()}", {"job_title": "总监"})
    assert response.status_code == 200, response.content
    body = _json(response)
    assert (body["display_name"], body["job_title"]) == ("张三", "总监")
    assert [p["number"] for p in body["phones"]] == ["+8613812345678"]
    event = AuditEvent.objects.get(action="customer.update")
    assert event.fields == ["job_title"]


def test_patch_with_errors_is_422_and_changes_nothing(client, admin_user):
    customer = make_customer(admin_user, display_name="张三")
    response = _patch(client, f"/customers/{customer.number}", {"display_name": "李四", "emails": [{"address": "x"}]})
    _assert_error(response, 422, "validation_error", ["emails.0.address"])
    customer.refresh_from_db()
    assert customer.display_name == "张三"


def test_archive_and_restore(client, admin_user):
    customer = make_customer(admin_user)
    response = _post(client, f"/customers/{customer.number}/archive", {"reason": "重复"})
    assert response.status_code == 200
    assert _json(response)["status"] == "archived"
    assert _list(client) == []
    assert AuditEvent.objects.get(action="customer.archive").note == "重复"
    response = client.post(f"{API}/customers/{customer.number}/restore")
    assert response.status_code == 200
    assert _json(response)["status"] == "active"
    assert _list(client) == [customer.number]


def test_bulk_tag(client, admin_user, api_client, users, other_team):
    a = make_customer(admin_user, display_name="甲")
    b = make_customer(admin_user, display_name="乙", tags=["旧"])
    hidden = make_customer(admin_user, display_name="丙")
    Customer.objects.filter(pk=hidden.pk).update(owner=None, team=other_team)
    response = _post(
        client, "/customers/bulk-tag", {"numbers": [a.number.lower(), f" {b.number} ", "C-1"], "add": ["新"]}
    )
    assert response.status_code == 200, response.content
    assert _json(response) == {"changed": 2}
    response = _post(client, "/customers/bulk-tag", {"numbers": [a.number, b.number], "remove": ["旧"]})
    assert _json(response) == {"changed": 1}
    assert _names(client, tag="新") == {"甲", "乙"}
    assert _names(client, tag="旧") == set()
    # Customers outside the caller's scope are not touched.
    sales = api_client(users[Role.SALES])
    assert _json(_post(sales, "/customers/bulk-tag", {"numbers": [hidden.number], "add": ["x"]})) == {"changed": 0}
    _assert_error(_post(client, "/customers/bulk-tag", {"numbers": []}), 422, "validation_error", ["numbers"])


def test_tags_endpoints(client):
    response = _post(client, "/tags", {"name": " 重要客户 ", "color": "#ff0000"})
    assert response.status_code == 201, response.content
    tag = _json(response)
    assert (tag["name"], tag["color"]) == ("重要客户", "#ff0000")
    _assert_error(_post(client, "/tags", {"name": "重要客户"}), 422, "validation_error", ["name"])
    _assert_error(_post(client, "/tags", {"name": "x", "color": "red"}), 422, "validation_error", ["color"])
    response = _patch(client, f"/tags/{tag['id']}", {"description": "年消费十万以上"})
    assert _json(response)["description"] == "年消费十万以上"
    assert _json(response)["name"] == "重要客户"
    assert [t["name"] for t in _json(client.get(f"{API}/tags"))] == ["重要客户"]
    _assert_error(_patch(client, "/tags/999999", {"name": "x"}), 404, "not_found")


def test_custom_field_endpoints(client):
    field = {"key": "level", "label_zh": "等级", "label_en": "Level", "field_type": "choice", "choices": ["金", "银"]}
    response = _post(client, "/custom-fields", field)
    assert response.status_code == 201, response.content
    assert _json(response)["choices"] == ["金", "银"]
    _assert_error(_post(client, "/custom-fields", field), 422, "validation_error", ["key"])
    _assert_error(_post(client, "/custom-fields", field | {"key": "Bad Key"}), 422, "validation_error", ["key"])
    _assert_error(_post(client, "/custom-fields", field | {"key": "x", "choices": []}), 422, "validation_error")
    response = _patch(client, "/custom-fields/level", {"required": True, "choices": ["金", "银", "铜"]})
    assert _json(response)["required"] is True
    assert _json(response)["choices"] == ["金", "银", "铜"]
    assert [f["key"] for f in _json(client.get(f"{API}/custom-fields"))] == ["level"]
    _assert_error(_patch(client, "/custom-fields/nope", {"required": True}), 404, "not_found")
    # The new definition is enforced on customers at once.
    _assert_error(_post(client, "/customers", {"display_name": "x"}), 422, "validation_error", ["custom_fields.level"])
    assert _post(client, "/customers", {"display_name": "x", "custom_fields": {"level": "铜"}}).status_code == 201


# --- errors ------------------------------------------------------------------------------------------


def test_bad_json_body_is_400(client):
    response = client.post(f"{API}/customers", data="{not json", content_type="application/json")
    _assert_error(response, 400, "invalid_json")


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
    _assert_error(_post(client, "/customers", body), 422, "validation_error", fields)
    assert not Customer.objects.exists()


def test_error_messages_follow_accept_language(admin_user):
    _, raw = api_token_create(user=admin_user, scope="write")
    zh = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    en = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE="en")
    body = {"display_name": ""}
    zh_body = _assert_error(_post(zh, "/customers", body), 422, "validation_error")
    en_body = _assert_error(_post(en, "/customers", body), 422, "validation_error")
    assert zh_body["code"] == en_body["code"]
    assert en_body["details"][0]["message"] == "Enter the customer's name."


def test_missing_or_bad_token_is_401(admin_user):
    _assert_error(Client().get(f"{API}/customers"), 401, "not_authenticated")
    _assert_error(Client(HTTP_AUTHORIZATION="Bearer cim_nope").get(f"{API}/customers"), 401, "not_authenticated")
    _assert_error(Client(HTTP_AUTHORIZATION="Basic YTpi").get(f"{API}/customers"), 401, "not_authenticated")
    _assert_error(Client().post(f"{API}/customers", {}, content_type="application/json"), 401, "not_authenticated")


def test_revoked_token_and_inactive_user_are_401(admin_user):
    token, raw = api_token_create(user=admin_user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{API}/customers").status_code == 200
    api_token_revoke(token=token, actor=admin_user)
    _assert_error(client.get(f"{API}/customers"), 401, "token_revoked")
    _, raw = api_token_create(user=admin_user)
    admin_user.is_active = False
    admin_user.save()
    _assert_error(Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(f"{API}/customers"), 401, "not_authenticated")
    assert ApiToken.objects.count() == 2


def test_role_without_the_right_is_403(api_client, users, admin_user):
    customer = make_customer(admin_user)
    analyst = api_client(users[Role.ANALYST])
    _assert_error(_post(analyst, "/customers", {"display_name": "x"}), 403, "permission_denied")
    _assert_error(_patch(analyst, f"/customers/{customer.number}", {"alias": "x"}), 403, "permission_denied")
    marketing = api_client(users[Role.MARKETING])
    _assert_error(_post(marketing, f"/customers/{customer.number}/archive", {}), 403, "permission_denied")
    _assert_error(_post(marketing, "/tags", {"name": "x"}), 403, "permission_denied")
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
        if response.status_code >= 500 or (response.status_code >= 400 and "code" not in _json(response)):
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
    assert "code" in _json(response) or "items" in _json(response)


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


def test_custom_field_definitions_deactivated_through_the_api_stop_validating(client, admin_user):
    configuration.custom_field_create(
        key="level", label_zh="等级", label_en="Level", field_type="choice", choices=["金"], actor=admin_user
    )
    _patch(client, "/custom-fields/level", {"is_active": False})
    assert CustomFieldDefinition.objects.get().is_active is False
    _assert_error(
        _post(client, "/customers", {"display_name": "x", "custom_fields": {"level": "金"}}),
        422,
        "validation_error",
        ["custom_fields.level"],
    )
    assert _json(client.get(f"{API}/custom-fields"))[0]["key"] == "level"  # kept, so stored values keep meaning


def test_handing_a_customer_outside_ones_scope_still_answers_with_it(api_client, users, other_team):
    outsider = user_create(username="sales-north", role=Role.SALES, password="Correct-Horse-42", team=other_team)[0]
    sales = api_client(users[Role.SALES])
    body = {"display_name": "转交客户", "owner_id": outsider.pk, "team_id": other_team.pk}
    response = _post(sales, "/customers", body)
    assert response.status_code == 201, response.content
    assert _json(response)["owner_id"] == outsider.pk
    mine = _json(_post(sales, "/customers", {"display_name": "我的"}))
    response = _patch(sales, f"/customers/{mine['number']}", {"owner_id": outsider.pk, "team_id": other_team.pk})
    assert response.status_code == 200, response.content
    assert _json(response)["owner_id"] == outsider.pk
    assert Customer.objects.count() == 2
    _assert_error(sales.get(f"{API}/customers/{mine['number']}"), 404, "not_found")
