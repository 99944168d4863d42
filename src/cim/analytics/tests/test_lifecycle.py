"""Lifecycle stages: known transitions from the orders, audited on the timeline, idempotent, and the funnel."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.translation import override

from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.orders import order_create, order_refund
from cim.activities.timeline import timeline_page
from cim.analytics.lifecycle import Thresholds, lifecycle_days_in_stage, lifecycle_funnel, lifecycle_refresh, stage_of
from cim.analytics.models import CustomerScore
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer

RULES = Thresholds(loyal_orders=3, at_risk_days=90, churned_days=365)


@pytest.mark.parametrize(
    ("orders", "days", "stage"),
    [
        (0, None, "potential"),
        (1, 10, "new"),
        (2, 10, "repeat"),
        (3, 10, "loyal"),
        (3, 91, "at_risk"),
        (1, 90, "new"),  # on the boundary: not yet at risk
        (9, 366, "churned"),
    ],
)
def test_stage_rule(orders, days, stage):
    assert stage_of(orders, days, RULES) == stage


def buy(customer, actor, *days_ago):
    return [
        order_create(
            customer=customer,
            data=OrderInput(
                ordered_at=timezone.now() - timedelta(days=days), lines=[{"name": "茶", "unit_price": "10"}]
            ),
            actor=actor,
        )
        for days in days_ago
    ]


def test_refresh_moves_customers_audits_each_change_and_is_idempotent(admin_user):
    browsing = make_customer(admin_user, display_name="只看不买")
    first = make_customer(admin_user, display_name="首单")
    regular = make_customer(admin_user, display_name="常客")
    quiet = make_customer(admin_user, display_name="沉寂")
    refunded = make_customer(admin_user, display_name="退货")
    buy(first, admin_user, 3)
    buy(regular, admin_user, 1, 20, 40)
    buy(quiet, admin_user, 100, 200)
    [returned] = buy(refunded, admin_user, 5)
    order_refund(order=returned, data=RefundInput(), actor=admin_user)  # no purchase left

    run = lifecycle_refresh(thresholds=RULES)
    stages = dict(Customer.objects.values_list("display_name", "lifecycle_stage"))
    assert stages == {"只看不买": "potential", "首单": "new", "常客": "loyal", "沉寂": "at_risk", "退货": "potential"}
    assert run.changed == 3  # everyone starts potential
    assert run.by_stage == {"potential": 2, "new": 1, "loyal": 1, "at_risk": 1}
    assert browsing.lifecycle_stage == "potential"
    with override("en"):
        [change] = [e for e in timeline_page(customer_id=regular.pk, kinds=["change"]).entries if e.changes]
    assert (change.title, change.changes[0][1:]) == ("Lifecycle stage changed", ("Potential", "Loyal"))
    assert lifecycle_refresh(thresholds=RULES).changed == 0


def test_funnel_counts_customers_who_reached_each_stage(admin_user):
    for name, days in (("甲", (1,)), ("乙", (1, 2)), ("丙", (1, 2, 3, 4, 5)), ("丁", (400,))):
        buy(make_customer(admin_user, display_name=name), admin_user, *days)
    make_customer(admin_user, display_name="戊")
    lifecycle_refresh()
    funnel = {key: (count, rate) for key, _label, count, rate in lifecycle_funnel()}
    assert funnel["potential"] == (5, None)
    assert funnel["new"] == (4, 0.8)  # 甲, 乙, 丙 and the churned 丁 bought once at least
    assert funnel["repeat"] == (2, 0.5)
    assert funnel["loyal"] == (1, 0.5)
    assert funnel["churned"] == (1, None)


def test_cli_refreshes_and_prints_the_funnel(admin_user, capsys):
    buy(make_customer(admin_user), admin_user, 1)
    call_command("analytics", "lifecycle", "--json")
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (data["customers"], data["changed"], data["stages"]) == (1, 1, {"new": 1})


def test_days_in_stage_count_from_the_last_change(admin_user):
    regular = make_customer(admin_user, display_name="常客")
    returning = make_customer(admin_user, display_name="回头客")
    make_customer(admin_user, display_name="只看")
    CustomerScore.objects.create(customer=returning)  # a row to update, beside one to create
    Customer.objects.filter(pk__in=[regular.pk, returning.pk]).update(created_at=timezone.now() - timedelta(days=100))
    buy(regular, admin_user, 1, 2, 3)
    buy(returning, admin_user, 1, 2)
    lifecycle_refresh(thresholds=RULES)
    later = timezone.now() + timedelta(days=10)
    days = lifecycle_days_in_stage(as_of=later)
    assert days == {stage: pytest.approx(10, abs=0.1) for stage in ("loyal", "repeat", "potential")}
