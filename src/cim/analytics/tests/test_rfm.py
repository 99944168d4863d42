"""RFM: known answers for scores (quintiles and cut points), both segment schemes, refunds, and the CLI."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.orders import order_cancel, order_create, order_refund
from cim.analytics.rfm import CutPoints, rf_segment, rfm_scores
from cim.customers.tests.factories import make_customer

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
# name → [(days before AS_OF, amount)]: five customers, each better than the next on every measure.
HISTORY = {
    "甲": [(1, 500), (10, 500), (20, 500), (30, 500), (40, 500)],
    "乙": [(5, 300), (50, 300), (90, 300), (120, 300)],
    "丙": [(30, 200), (100, 200), (200, 200)],
    "丁": [(90, 150), (300, 150)],
    "戊": [(365, 100)],
}


@pytest.fixture
def customers(admin_user):
    made = {}
    for name, orders in HISTORY.items():
        made[name] = make_customer(admin_user, display_name=name)
        for days, amount in orders:
            order_create(
                customer=made[name],
                data=OrderInput(ordered_at=AS_OF - timedelta(days=days), lines=[{"name": "茶", "unit_price": amount}]),
                actor=admin_user,
            )
    return made


def by_name(result, customers):
    names = {customer.pk: name for name, customer in customers.items()}
    return {names[row.customer_id]: row for row in result.rows}


def test_quintile_scores_and_both_segment_schemes(customers):
    rows = by_name(rfm_scores(as_of=AS_OF), customers)
    assert [(rows[n].r, rows[n].f, rows[n].m) for n in "甲乙丙丁戊"] == [
        (5, 5, 5),
        (4, 4, 4),
        (3, 3, 3),
        (2, 2, 2),
        (1, 1, 1),
    ]
    assert (rows["甲"].recency_days, rows["甲"].frequency, rows["甲"].monetary) == (1, 5, 2500.0)
    assert [rows[n].segment for n in "甲乙丙丁戊"] == [
        "champions",
        "loyal",
        "need_attention",
        "hibernating",
        "hibernating",
    ]
    # Averages: recency 98.2 days, frequency 3, monetary 940. 丙 buys as often as the average but spends less;
    # 丁 bought 90 days ago, more recently than the average, but seldom and little.
    assert [rows[n].value_segment for n in "甲乙丙丁戊"] == [
        "important_value", "important_value", "general_value", "general_development", "general_winback",
    ]  # fmt: skip


def test_cut_points_and_refunds(customers, admin_user):
    lost = customers["戊"].orders.get()
    order_refund(order=lost, data=RefundInput(), actor=admin_user)  # 戊's only purchase, refunded: no purchase
    later = order_create(
        customer=customers["丁"],
        data=OrderInput(ordered_at=AS_OF, lines=[{"name": "壶", "unit_price": 999}]),
        actor=admin_user,
    )
    order_cancel(order=later, actor=admin_user)  # cancelled: 丁 did not buy yesterday
    cuts = CutPoints(recency=(7, 30, 90, 180), frequency=(2, 3, 4, 5), monetary=(200, 400, 800, 1600))
    rows = by_name(rfm_scores(as_of=AS_OF, cuts=cuts), customers)
    assert "戊" not in rows
    assert (rows["甲"].r, rows["甲"].f, rows["甲"].m) == (5, 5, 5)
    assert (rows["丙"].r, rows["丙"].f, rows["丙"].m) == (4, 3, 3)  # 30 days; 3 orders; 600
    assert (rows["丁"].recency_days, rows["丁"].r, rows["丁"].m) == (90, 3, 2)


def test_every_rf_cell_has_a_segment():
    assert {rf_segment(r, f) for r in range(1, 6) for f in range(1, 6)} >= {"champions", "hibernating", "at_risk"}


def test_cli_prints_segments_and_the_grid(customers, capsys, settings):
    call_command("analytics", "rfm", "--json")
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["customers"] == 5
    assert sum(map(sum, data["grid"])) == 5


def test_cli_clv_prints_fitted_parameters(db, capsys):
    from cim.analytics.cdnow import load_cdnow

    load_cdnow()
    call_command("analytics", "clv", "--calibration-end", "1997-09-30", "--time-unit", "W", "--json")
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)
    assert data["customers"] == 2357


def test_page_and_api_for_each_role(customers, users, api_client):
    from django.test import Client

    from cim.accounts.roles import Role

    for role, allowed in ((Role.ANALYST, True), (Role.MARKETING, True), (Role.SALES, False)):
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(users[role])
        page = client.get("/analytics/")
        assert page.status_code == (200 if allowed else 403), role
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(users[Role.ANALYST])
    html = page.get("/analytics/").content.decode()
    assert 'id="rfm-grid"' in html and "Important value" in html
    assert "at least 20 customers" in html  # five customers are too few for the lifetime-value models
    api = api_client(users[Role.ANALYST])
    assert sum(map(sum, api.get("/api/v1/analytics/rfm").json()["grid"])) == 5
    clv = api.get("/api/v1/analytics/clv").json()
    assert clv["fitted"] is False and clv["problem"]
    assert api.get("/api/v1/analytics/clv?time_unit=Y").status_code == 422
