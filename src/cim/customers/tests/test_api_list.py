"""The customers REST API's list: filters, search and cursor pages."""

import base64
import json
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cim.accounts.roles import Role
from cim.customers import configuration
from cim.customers.filters import SORTS, CustomerFilter
from cim.customers.models import Customer
from cim.customers.selectors import customer_list
from cim.customers.services import customer_archive
from cim.customers.tests.api_calls import API, SHANGHAI, assert_error, json_body, list_names, list_numbers
from cim.customers.tests.factories import make_customer


@pytest.fixture
def client(admin_user, api_client):
    return api_client(admin_user)


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
    assert list_names(client, **params) == expected


def test_owner_and_team_filters(client, catalogue, users, team, other_team):
    assert list_names(client, owner_id=users[Role.SALES].pk) == {"甲"}
    assert list_names(client, team_id=other_team.pk) == {"乙"}
    assert "乙" not in list_names(client, team_id=team.pk)


def test_created_and_updated_date_ranges_are_whole_local_days(client, catalogue):
    def at(day, hour):
        return datetime(2025, 3, day, hour, 30, tzinfo=SHANGHAI)

    # 23:30 and 00:30 Shanghai time sit on different UTC days than their local ones.
    Customer.objects.filter(display_name="甲").update(created_at=at(1, 0), updated_at=at(10, 23))
    Customer.objects.filter(display_name="乙").update(created_at=at(1, 23), updated_at=at(11, 0))
    Customer.objects.filter(display_name="丙").update(created_at=at(2, 0), updated_at=at(12, 12))
    assert list_names(client, created_from="2025-03-01", created_to="2025-03-01") == {"甲", "乙"}
    assert list_names(client, created_from="2025-03-02", created_to="2025-03-02") == {"丙"}
    assert list_names(client, created_to="2025-03-01") == {"甲", "乙"}
    assert list_names(client, updated_from="2025-03-11", updated_to="2025-03-12") == {"乙", "丙"}
    assert list_names(client, updated_to="2025-03-10") == {"甲"}


def test_invalid_filter_values_are_422_with_the_field(client):
    assert_error(client.get(f"{API}/customers", {"kind": "alien"}), 422, "validation_error", ["kind"])
    assert_error(client.get(f"{API}/customers", {"sort": "salary"}), 422, "validation_error", ["sort"])
    assert_error(client.get(f"{API}/customers", {"created_from": "yesterday"}), 422, "validation_error")
    assert_error(client.get(f"{API}/customers", {"limit": 0}), 422, "validation_error", ["limit"])
    assert_error(client.get(f"{API}/customers", {"limit": 501}), 422, "validation_error", ["limit"])
    assert_error(client.get(f"{API}/customers", {"q": "x" * 201}), 422, "validation_error", ["q"])


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
    assert list_numbers(client, q=q) == expected


def test_list_rows_show_primary_contacts_and_tags(client, admin_user):
    customer = make_customer(
        admin_user,
        phones=[{"number": "13812345678"}, {"number": "13912345678", "is_primary": True}],
        emails=[{"address": "A@Example.com"}],
        tags=["b", "a"],
    )
    row = json_body(client.get(f"{API}/customers"))["items"][0]
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
        body = json_body(client.get(f"{API}/customers", params))
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
    first = json_body(client.get(f"{API}/customers", {"limit": 4}))
    make_customer(admin_user, display_name="新来的")
    rest = json_body(client.get(f"{API}/customers", {"limit": 500, "cursor": first["next_cursor"]}))
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
    assert_error(client.get(f"{API}/customers", {"sort": sort, "cursor": cursor}), 400, "bad_request")


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
        assert len(json_body(response)["items"]) == n
        return len(queries)

    assert count(5) == count(30)
    with django_assert_max_num_queries(8):
        client.get(f"{API}/customers", {"limit": 50})
