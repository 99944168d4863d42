"""Customer clusters: well-separated groups are found and described; page, API, CLI and the customer list filter."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.models import Order
from cim.analytics.clusters import clusters_refresh, describe, traits
from cim.analytics.models import Cluster, CustomerScore
from cim.analytics.tasks import bought_together_refresh, customer_clusters_refresh
from cim.core.schedule import PERIODIC
from cim.customers.tests.factories import make_customer

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
PER_GROUP = 8
# group → (orders, amount, days before AS_OF of the last order, days between orders)
GROUPS = {
    "big": (10, 1000, 2, 30),  # buy often, spend a lot, bought days ago
    "once": (1, 50, 400, 0),  # bought once, little, more than a year ago
    "middle": (3, 200, 100, 40),
}


@pytest.fixture
def groups(admin_user):
    made: dict[str, list] = {}
    orders = []
    for name, (count, amount, last, gap) in GROUPS.items():
        for i in range(PER_GROUP):
            customer = make_customer(admin_user, display_name=f"{name}{i}")
            made.setdefault(name, []).append(customer)
            value = Decimal(amount + i)  # a little spread inside each group
            orders += [
                Order(
                    customer=customer,
                    number=f"{name}-{i}-{n}",
                    ordered_at=AS_OF - timedelta(days=last + i + n * gap),
                    lines_amount=value,
                    total_amount=value,
                    net_amount=value,
                )
                for n in range(count)
            ]
    Order.objects.bulk_create(orders)
    return made


def test_well_separated_groups_are_recovered_and_described(groups, admin_user):
    bystander = make_customer(admin_user, display_name="没买过")
    CustomerScore.objects.create(customer=bystander, cluster=5, orders=0)  # from an earlier run: cleared
    run = clusters_refresh(as_of=AS_OF)
    assert (run.customers, run.k) == (3 * PER_GROUP, 3)
    assert max(run.silhouettes, key=run.silhouettes.get) == 3
    numbers = dict(CustomerScore.objects.values_list("customer_id", "cluster"))
    found = {name: {numbers[c.pk] for c in customers} for name, customers in groups.items()}
    # One cluster per group, numbered by mean spend: the big spenders are 1, the one-time buyers 3.
    assert found == {"big": {1}, "middle": {2}, "once": {3}}
    assert numbers[bystander.pk] is None
    clusters = {c.number: c for c in Cluster.objects.all()}
    assert [clusters[n].size for n in (1, 2, 3)] == [PER_GROUP] * 3
    assert clusters[3].centre["orders"] == 1 and clusters[1].centre["orders"] == 10
    with override("en"):
        assert describe(clusters[1].centre, clusters[1].population) == (
            "Bought recently; spend a lot; place large orders"
        )
        assert describe(clusters[3].centre, clusters[3].population) == (
            "Spend little; place small orders; one-time buyers"
        )


def test_descriptions_say_what_differs_from_the_population():
    population = {"recency_days": 100, "orders": 4, "total_spent": 1000, "refund_share": 0.1, "interactions": 0}
    # Half as much again is a difference; a bit more is not; zero interactions everywhere says nothing.
    assert traits({**population, "orders": 6, "total_spent": 1200}, population) == [("orders", "high")]
    assert traits({**population, "refund_share": 0.4, "recency_days": 20}, population) == [
        ("recency_days", "low"),
        ("refund_share", "high"),
    ]
    with override("en"):
        assert describe(population, population) == "Close to the average customer"
        assert describe({**population, "refund_share": 0.4}, population) == "Often return purchases"


def test_a_given_k_and_too_few_customers(groups, admin_user):
    assert clusters_refresh(k=2, as_of=AS_OF).k == 2
    assert Cluster.objects.count() == 2
    with pytest.raises(ValidationError):
        clusters_refresh(k=9, as_of=AS_OF)
    Order.objects.all().delete()
    with pytest.raises(ValidationError):
        clusters_refresh(as_of=AS_OF)


def test_clusters_page_api_cli_and_customer_list(groups, client, api_client, users, capsys):
    call_command("analytics", "clusters", "--k", "3", "--json")
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (printed["customers"], printed["k"], [c["size"] for c in printed["clusters"]]) == (24, 3, [8, 8, 8])
    response = api_client(users[Role.ANALYST]).get("/api/v1/analytics/clusters")
    assert response.status_code == 200
    first = response.json()["clusters"][0]
    # The CLI clusters as of today, so recency counts from today: the description is the stored centre's.
    stored = Cluster.objects.get(number=1)
    with override("en"):
        assert (first["number"], first["size"], first["description"]) == (
            1,
            8,
            describe(stored.centre, stored.population),
        )
    assert "spend a lot" in first["description"].lower()
    assert {"feature": "total_spent", "direction": "high"} in first["traits"]
    assert api_client(users[Role.SALES]).get("/api/v1/analytics/clusters").status_code == 403
    client.force_login(users[Role.ANALYST])
    page = client.get(reverse("analytics:clusters"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "one-time buyers" in page.text
    assert "?cluster=1&amp;status=any" in page.text
    listed = client.get(reverse("customers:list") + "?cluster=3&status=any&per_page=50")
    assert {c.display_name for c in listed.context["page_obj"]} == {c.display_name for c in groups["once"]}


def test_the_daily_refresh_clusters_and_mines_and_waits_for_enough_customers(groups):
    assert PERIODIC["cim.analytics.tasks.customer_clusters_refresh"].every == timedelta(days=1)
    assert PERIODIC["cim.analytics.tasks.bought_together_refresh"].every == timedelta(days=1)
    assert customer_clusters_refresh.call() >= 2
    assert Cluster.objects.exists()
    assert bought_together_refresh.call() == 0  # no order has catalogue products: no rule, no failure
    Order.objects.all().delete()
    assert customer_clusters_refresh.call() == 0
