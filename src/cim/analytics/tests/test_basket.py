"""Frequently bought together: hand-computed support, confidence and lift; recommendations; API, CLI and pages."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.history_schemas import OrderInput, ProductInput
from cim.activities.orders import order_cancel, order_create, product_save
from cim.analytics.basket import recommendations_for, rules_refresh
from cim.analytics.models import AssociationRule
from cim.customers.tests.factories import make_customer

WHEN = datetime(2026, 5, 1, tzinfo=UTC)
# Five counted orders over the products 茶 (A), 杯 (B) and 壶 (C), N = 5:
#   {A,B} {A,B,C} {A,C} {B} {A,B}
# support: A 4/5, B 4/5, C 2/5, AB 3/5, AC 2/5, BC 1/5, ABC 1/5.
# With min support 0.3 and min confidence 0.5 the frequent sets are A, B, C, AB, AC, and the rules:
#   A → B: confidence 0.6/0.8 = 0.75, lift 0.75/0.8 = 0.9375  (below 1: dropped)
#   B → A: confidence 0.75, lift 0.9375                        (dropped)
#   C → A: support 0.4, confidence 0.4/0.4 = 1, lift 1/0.8 = 1.25
#   A → C: support 0.4, confidence 0.4/0.8 = 0.5, lift 0.5/0.4 = 1.25
# A cancelled order {B, C} and a line without a catalogue product change nothing.
BASKETS = [("A", "B"), ("A", "B", "C"), ("A", "C"), ("B",), ("A", "B")]
PRODUCTS = {
    "A": ("TEA", "茶", "茶叶"),
    "B": ("CUP", "杯", "茶具"),
    "C": ("POT", "壶", "茶具"),
    "D": ("TRAY", "茶盘", "茶具"),
}


@pytest.fixture
def products(admin_user):
    return {
        key: product_save(data=ProductInput(sku=sku, name=name, category=category, price=10), actor=admin_user)
        for key, (sku, name, category) in PRODUCTS.items()
    }


def buy(customer, keys, actor, **fields):
    lines = [{"sku": PRODUCTS[key][0]} for key in keys]
    return order_create(customer=customer, data=OrderInput(ordered_at=WHEN, lines=lines, **fields), actor=actor)


@pytest.fixture
def baskets(products, admin_user):
    customers = [make_customer(admin_user, display_name=f"顾客{i}") for i in range(len(BASKETS))]
    for customer, keys in zip(customers, BASKETS, strict=True):
        buy(customer, keys, admin_user)
    order_cancel(order=buy(customers[3], "C", admin_user), actor=admin_user)
    order_create(
        customer=customers[3],
        data=OrderInput(ordered_at=WHEN, lines=[{"name": "散装", "unit_price": 5}]),
        actor=admin_user,
    )
    return customers


def test_rules_have_the_hand_computed_support_confidence_and_lift(baskets, products):
    run = rules_refresh(min_support=0.3, min_confidence=0.5)
    assert (run.baskets, run.rules) == (5, 2)
    a, c = products["A"].pk, products["C"].pk
    assert [
        (rule.antecedents, rule.consequents, rule.support, rule.confidence, rule.lift)
        for rule in AssociationRule.objects.all()
    ] == [([c], [a], 0.4, 1.0, 1.25), ([a], [c], 0.4, 0.5, 1.25)]


def test_refresh_replaces_the_rules_and_checks_thresholds(baskets):
    rules_refresh(min_support=0.3, min_confidence=0.5)
    rules_refresh(min_support=0.3, min_confidence=0.9)
    assert AssociationRule.objects.count() == 1  # only C → A reaches confidence 0.9
    with pytest.raises(Exception, match="between 0 and 1"), override("en"):
        rules_refresh(min_support=1.5)


def test_recommendations_follow_the_rules_skip_what_was_bought_and_fall_back_to_the_category(
    baskets, products, admin_user
):
    rules_refresh(min_support=0.3, min_confidence=0.5)
    only_tea = make_customer(admin_user, display_name="只买茶")
    buy(only_tea, "A", admin_user)
    has_both = baskets[2]  # bought A and C: the rules have nothing new for them
    found = recommendations_for([only_tea.pk, has_both.pk, baskets[1].pk], limit=5)
    first = found[only_tea.pk][0]
    assert (first.product_id, first.reason, first.score, first.because) == (products["C"].pk, "rule", 0.625, ["茶"])
    # Then the popular products of the categories bought (茶叶: only A, already bought): none left but the rule's.
    assert [r.product_id for r in found[only_tea.pk]] == [products["C"].pk]
    # 壶 is in 茶具: the popular 茶具 products not yet bought, most bought first (杯 by 4 customers, 茶盘 by none).
    assert [(r.product_id, r.reason) for r in found[has_both.pk]] == [(products["B"].pk, "popular")]
    # Someone who bought everything popular gets nothing, and never a product they already have.
    assert baskets[1].pk not in found


def test_recommendations_leave_out_inactive_products_and_products_in_any_order(baskets, products, admin_user):
    rules_refresh(min_support=0.3, min_confidence=0.5)
    customer = make_customer(admin_user, display_name="取消过")
    buy(customer, "A", admin_user)
    assert [r.product_id for r in recommendations_for([customer.pk])[customer.pk]] == [products["C"].pk]
    order_cancel(order=buy(customer, "C", admin_user), actor=admin_user)  # cancelled, but they know 壶
    assert customer.pk not in recommendations_for([customer.pk])
    other = make_customer(admin_user, display_name="新客")
    buy(other, "A", admin_user)
    product_save(data=ProductInput(sku="POT", name="壶", category="茶具", is_active=False), actor=admin_user)
    assert other.pk not in recommendations_for([other.pk])


def test_rules_page_api_and_cli(baskets, products, client, api_client, users, capsys):
    call_command("analytics", "rules", "--min-support", "0.3", "--min-confidence", "0.5", "--json")
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (printed["baskets"], printed["rules"]) == (5, 2)
    assert printed["top"][0] == {
        "if_bought": ["壶"], "then": ["茶"], "support": 0.4, "confidence": 1.0, "lift": 1.25
    }  # fmt: skip
    response = api_client(users[Role.ANALYST]).get("/api/v1/analytics/rules?limit=1")
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], len(body["rules"])) == (2, 1)
    assert body["rules"][0]["antecedents"] == [{"id": products["C"].pk, "sku": "POT", "name": "壶"}]
    assert (body["rules"][0]["confidence"], body["rules"][0]["lift"]) == (1.0, 1.25)
    assert api_client(users[Role.SALES]).get("/api/v1/analytics/rules").status_code == 403
    client.force_login(users[Role.ANALYST])
    with override("en"):
        page = client.get(reverse("analytics:rules"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "壶" in page.text and "1.25" in page.text


def test_recommendations_on_the_customer_page_and_api_respect_visibility(
    baskets, products, client, api_client, make_user
):
    rules_refresh(min_support=0.3, min_confidence=0.5)
    owner = make_user(Role.SALES, username="owner")
    customer = make_customer(owner, display_name="只买茶")
    buy(customer, "A", owner)
    response = api_client(owner).get(f"/api/v1/customers/{customer.number}/recommendations")
    assert response.status_code == 200
    assert response.json()[0] == {
        "product": {"id": products["C"].pk, "sku": "POT", "name": "壶"}, "category": "茶具", "reason": "rule",
        "score": 0.625, "because": ["茶"],
    }  # fmt: skip
    client.force_login(owner)
    page = client.get(reverse("customers:detail", args=[customer.number]))
    assert 'id="recommendations"' in page.text and "壶" in page.text
    stranger = make_user(Role.SALES, username="stranger", team=None)
    assert api_client(stranger).get(f"/api/v1/customers/{customer.number}/recommendations").status_code == 404
