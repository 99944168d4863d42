"""Segment rules: known answers for every kind of condition, AND/OR/NOT and empty groups, and clear errors."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import override

from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.orders import order_create, order_refund
from cim.analytics.scores import scores_refresh
from cim.customers.models import Customer
from cim.customers.services import customers_tag
from cim.customers.tests.factories import make_customer
from cim.segments.rules import rules_condition, rules_validate
from cim.segments.services import current_customers


def buy(customer, actor, days_ago: int, price: str = "100", sku: str = ""):
    line = {"name": "茶", "unit_price": price} | ({"sku": sku} if sku else {})
    return order_create(
        customer=customer,
        data=OrderInput(ordered_at=timezone.now() - timedelta(days=days_ago), lines=[line]),
        actor=actor,
    )


@pytest.fixture
def people(admin_user):
    """Five customers with known traits: who matches what is written beside each."""
    wang = make_customer(
        admin_user, display_name="王芳", gender="female", source_channel="wechat", phones=[{"number": "13800138000"}]
    )
    li = make_customer(admin_user, display_name="李雷", gender="male", source_channel="website")
    zhang = make_customer(admin_user, display_name="张伟", gender="male", source_channel="wechat")
    zhao = make_customer(admin_user, display_name="赵敏", gender="female", source_channel="event")
    qian = make_customer(admin_user, display_name="钱多多", kind="organization", company="多多贸易")
    buy(wang, admin_user, 5, "600", sku="TEA-1")  # 600 spent, recently
    buy(wang, admin_user, 40, "500")
    buy(li, admin_user, 200, "80", sku="TEA-2")  # one small order long ago
    returned = buy(zhang, admin_user, 3, "900")  # fully refunded: no purchase
    order_refund(order=returned, data=RefundInput(), actor=admin_user)
    customers_tag(customer_ids=[wang.pk, zhao.pk], add=["VIP"], actor=admin_user)
    customers_tag(customer_ids=[zhao.pk], add=["老客户"], actor=admin_user)
    scores_refresh()
    return {c.display_name: c for c in (wang, li, zhang, zhao, qian)}


def names(tree) -> set[str]:
    condition = rules_condition(rules_validate(tree))
    return set(current_customers().filter(condition).values_list("display_name", flat=True))


def cond(field, operator, value=None, **extra):
    return {"field": field, "operator": operator, "value": value, **extra}


ALL = {"王芳", "李雷", "张伟", "赵敏", "钱多多"}


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (cond("gender", "eq", "female"), {"王芳", "赵敏"}),
        (cond("gender", "ne", "female"), {"李雷", "张伟", "钱多多"}),
        (cond("source_channel", "in", ["wechat", "event"]), {"王芳", "张伟", "赵敏"}),
        (cond("source_channel", "is_empty"), {"钱多多"}),
        (cond("company", "contains", "多多"), {"钱多多"}),
        (cond("kind", "eq", "organization"), {"钱多多"}),
        (cond("total_spent", "gte", 1000), {"王芳"}),
        (cond("total_spent", "lt", 100), {"李雷", "张伟", "赵敏", "钱多多"}),  # no orders count as 0 spent
        (cond("orders", "eq", 0), {"张伟", "赵敏", "钱多多"}),  # a refunded order is no purchase
        (cond("orders", "between", [1, 2]), {"王芳", "李雷"}),
        (cond("last_order_at", "within_last_days", 30), {"王芳"}),
        (cond("last_order_at", "more_than_days_ago", 90), {"李雷"}),
        (cond("last_order_at", "is_empty"), {"张伟", "赵敏", "钱多多"}),
        (cond("product", "bought_any", ["TEA-1", "TEA-2"]), {"王芳", "李雷"}),
        (cond("product", "bought_none", ["TEA-1"]), ALL - {"王芳"}),
        (cond("tag", "has_any", ["VIP"]), {"王芳", "赵敏"}),
        (cond("tag", "has_all", ["VIP", "老客户"]), {"赵敏"}),
        (cond("tag", "has_none", ["VIP"]), {"李雷", "张伟", "钱多多"}),
        (cond("phone", "eq", "+8613800138000"), {"王芳"}),
        (cond("phone", "is_empty"), ALL - {"王芳"}),
        (cond("rfm_segment", "is_set"), {"王芳", "李雷"}),
    ],
)
def test_conditions(people, tree, expected):
    assert names({"match": "all", "rules": [tree]}) == expected


def test_groups_and_or_not(people):
    female = cond("gender", "eq", "female")
    vip = cond("tag", "has_any", ["VIP"])
    wechat = cond("source_channel", "eq", "wechat")
    assert names({"match": "all", "rules": [female, wechat]}) == {"王芳"}
    assert names({"match": "any", "rules": [female, wechat]}) == {"王芳", "赵敏", "张伟"}
    assert names({"match": "all", "negate": True, "rules": [female, vip]}) == ALL - {"王芳", "赵敏"}
    # (female AND NOT (wechat OR spent ≥ 1000)) OR organisation
    nested = {
        "match": "any",
        "rules": [
            {
                "match": "all",
                "rules": [
                    female,
                    {"match": "any", "negate": True, "rules": [wechat, cond("total_spent", "gte", 1000)]},
                ],
            },
            cond("kind", "eq", "organization"),
        ],
    }
    assert names(nested) == {"赵敏", "钱多多"}


def test_empty_groups_place_no_condition(people):
    female = cond("gender", "eq", "female")
    assert names({"match": "all", "rules": []}) == ALL
    assert names({"match": "any", "negate": True, "rules": []}) == ALL
    assert names({"match": "all", "rules": [female, {"match": "any", "rules": []}]}) == {"王芳", "赵敏"}
    assert names({"match": "any", "rules": [female, {"match": "all", "negate": True, "rules": []}]}) == {"王芳", "赵敏"}


def test_archived_and_merged_customers_are_never_members(people, admin_user):
    Customer.objects.filter(pk=people["王芳"].pk).update(status="archived")
    assert names({"rules": [cond("gender", "eq", "female")]}) == {"赵敏"}


def test_every_bad_condition_is_named_by_position(people):
    tree = {
        "match": "all",
        "rules": [
            cond("gender", "eq", "female"),
            cond("no_such_field", "eq", 1),
            {"match": "any", "rules": [cond("total_spent", "gte", "lots"), cond("gender", "gte", "female")]},
            cond("last_order_at", "within_last_days", 0),
            cond("gender", "eq", "unknown"),
        ],
    }
    with override("en"), pytest.raises(ValidationError) as error:
        rules_validate(tree)
    messages = error.value.message_dict["rules"]
    assert messages == [
        "Condition 2: unknown field “no_such_field”.",
        "Condition 3.1: Total spent: “lots” is not a number.",
        "Condition 3.2: “gte” does not apply to Gender.",
        "Condition 4: Last order: give a number of days from 1 to 36500.",
        "Condition 5: Gender: “unknown” is not one of the choices.",
    ]
    with override("zh-hans"), pytest.raises(ValidationError) as error:
        rules_validate({"rules": [cond("no_such_field", "eq", 1)]})
    assert "no_such_field" in error.value.message_dict["rules"][0]
    assert "Condition" not in error.value.message_dict["rules"][0]


def test_values_are_normalised(people):
    tree = rules_validate(
        {"rules": [cond("total_spent", "between", ["100", 200.0]), cond("created_at", "on", "2026-01-02")]}
    )
    assert [r["value"] for r in tree["rules"]] == [[100, 200], "2026-01-02"]
    assert tree["match"] == "all" and tree["negate"] is False
