"""Churn warning: known answers on hand-built histories, the fitted model on a backtest, the columns written, the
follow-ups made once, the scope of the list, and the page, API and CLI."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.translation import override

from cim.accounts.roles import Role
from cim.activities.follow_ups import follow_up_complete
from cim.activities.history_schemas import OrderInput
from cim.activities.models import FollowUp, Order
from cim.activities.orders import order_create
from cim.analytics.churn import churn_refresh, churn_scores, reason_texts
from cim.analytics.churn_selectors import churn_list
from cim.analytics.models import CustomerScore
from cim.core.bulk import insert_rows, value_adapter
from cim.customers.models import Customer
from cim.customers.numbering import numbers_allocate
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.service.services import ticket_create


def buy(customer, actor, *days_ago, amount="100"):
    for days in days_ago:
        order_create(
            customer=customer,
            data=OrderInput(
                ordered_at=timezone.now() - timedelta(days=days), lines=[{"name": "茶", "unit_price": amount}]
            ),
            actor=actor,
        )


def monthly(last: int, count: int = 12) -> list[int]:
    """Days ago of `count` orders 30 days apart, the latest `last` days ago."""
    return [last + 30 * i for i in range(count)]


@pytest.fixture
def shop(make_user, admin_user):
    """A regular buyer who stopped 150 days ago, a steady one, and a steady one who complains."""
    seller, other = make_user(Role.SALES, "seller"), make_user(Role.SALES, "other-seller")
    stopped = make_customer(admin_user, display_name="停了", owner_id=seller.pk)
    steady = make_customer(admin_user, display_name="常客", owner_id=other.pk)
    unhappy = make_customer(admin_user, display_name="投诉", owner_id=other.pk)
    buy(stopped, admin_user, *monthly(150), amount="500")
    buy(steady, admin_user, *monthly(5))
    buy(unhappy, admin_user, *monthly(5))
    for days in (10, 40):
        ticket_create(
            customer=unhappy,
            subject="又坏了",
            channel="phone",
            category="complaint",
            actor=admin_user,
            opened_at=timezone.now() - timedelta(days=days),
        )
    return {"seller": seller, "other": other, "stopped": stopped, "steady": steady, "unhappy": unhappy}


def test_known_answers_with_the_fixed_weights(shop):
    result = churn_scores()
    assert result.method == "fixed"  # three customers: too few to fit
    scores = result.scores
    stopped, steady, unhappy = (scores.loc[shop[name].pk] for name in ("stopped", "steady", "unhappy"))
    # 150 days late on a 30-day rhythm (recency 0.45) and no order in the last 90 days against one before (0.2), of
    # the 0.9 of weights known without a lifetime-value fit.
    assert stopped["risk"] == pytest.approx(0.65 / 0.9, abs=0.001)
    assert stopped["reasons"][0][:1] == ["recency"]
    assert stopped["reasons"][0][2] == {"days": 150, "gap": 30}
    assert steady["risk"] == 0 and steady["reasons"] == []
    # Two complaints in 90 days (0.1), both tickets now past their first-response SLA (0.05).
    assert unhappy["risk"] == pytest.approx(0.15 / 0.9, abs=0.001)
    with override("en"):
        assert reason_texts(stopped["reasons"]) == [
            "No order for 150 days; usually every 30 days",
            "0 orders in the last 90 days, 1 in the 90 days before",
        ]
        assert reason_texts(unhappy["reasons"]) == ["2 complaints in 90 days", "2 open tickets past their SLA"]


def add_population(groups: dict[str, tuple[int, int]], today) -> dict[str, list[int]]:
    """Customers bought in bulk: name → (how many, days ago of their last order); each ordered every 20 days
    for a year before that."""
    stamp = value_adapter(Order._meta.get_field("ordered_at"))
    made, orders = {}, []
    for name, (count, last) in groups.items():
        numbers = numbers_allocate(count)
        Customer.objects.bulk_create(Customer(number=n, display_name=f"{name}{i}") for i, n in enumerate(numbers))
        made[name] = list(Customer.objects.filter(number__in=numbers).values_list("pk", flat=True))
        for index, pk in enumerate(made[name]):
            # Staggered by a day or two, so not everyone's rhythm is the same.
            for k in range(18):
                at = stamp(today - timedelta(days=last + index % 3 + 20 * k))
                orders.append((pk, f"{name}{pk}-{k}", "bulk", "paid", "", "", "CNY", at, 100, 0, 100, 0, 100, at, at))
    fields = ["customer", "number", "system", "status", "channel", "store", "currency", "ordered_at",
              "lines_amount", "discount_amount", "total_amount", "refunded_amount", "net_amount", "created_at",
              "updated_at"]  # fmt: skip
    insert_rows(Order, fields, orders)
    return made


def test_the_model_is_fitted_on_the_backtest_and_ranks_the_lapsed_first(db):
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    # Who stopped, stopped at different times, as they do.
    gone = {f"gone{last}": (15, last) for last in (100, 150, 200, 250)}
    made = add_population({"buying": (80, 1), "lapsing": (30, 60), **gone}, today)
    result = churn_scores()
    assert result.method == "model"
    assert result.backtest["customers"] == 170
    assert result.backtest["auc"] > 0.8  # who stopped just after the cutoff looked like everyone else
    assert result.coefficients["recency"] > 0
    risk = result.scores["risk"]
    lapsing = risk[made["lapsing"]]
    assert lapsing.min() > risk[made["buying"]].max()
    assert risk[made["buying"]].max() < 0.3
    for name in gone:
        assert (risk[made[name]] > 0.7).all(), name
    first_reasons = {reasons[0][0] for reasons in result.scores.loc[made["lapsing"], "reasons"]}
    assert first_reasons == {"recency"}


def test_refresh_writes_the_columns_and_makes_one_follow_up(shop, settings, admin_user):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    settings.LANGUAGE_CODE = "en"
    run = churn_refresh()
    assert (run.customers, run.at_risk, run.tasks) == (3, 1, 1)
    score = CustomerScore.objects.get(customer=shop["stopped"])
    assert score.churn_risk == pytest.approx(0.7222, abs=0.0001)
    assert score.churn_reasons[0] == ["recency", 0.5, {"days": 150, "gap": 30}]  # 0.45 of the 0.9 weights known
    assert score.p_alive is None and score.clv is None  # three customers: no lifetime-value fit
    [task] = FollowUp.objects.all()
    assert (task.customer, task.owner, task.status, task.priority) == (shop["stopped"], shop["seller"], "open", "high")
    assert "Churn risk 72%" in task.notes and "No order for 150 days; usually every 30 days" in task.notes
    assert churn_refresh().tasks == 0  # still open: no second one
    follow_up_complete(follow_up=task, actor=shop["seller"])
    assert churn_refresh().tasks == 0  # done, but made less than a window ago
    assert FollowUp.objects.count() == 1


def test_the_list_shows_only_the_customers_a_user_sees(shop, users, settings):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    churn_refresh(create_tasks=False)
    CustomerScore.objects.filter(customer=shop["stopped"]).update(total_spent=6000)  # as the RFM refresh writes it
    seller, other = shop["seller"], shop["other"]
    assert [s.customer for s in churn_list(user=seller)] == [shop["stopped"]]
    assert list(churn_list(user=other)) == []  # 投诉 is at 17%: below the list's 50%
    assert [s.customer for s in churn_list(user=other, min_risk=0.1)] == [shop["unhappy"]]
    admin = users[Role.ADMINISTRATOR]
    assert [s.customer for s in churn_list(user=admin, min_risk=0.1)] == [shop["stopped"], shop["unhappy"]]
    assert list(churn_list(user=admin, mine=True)) == []  # the administrator owns none
    [top] = churn_list(user=admin)
    assert (top.value, top.stake) == (6000, int(0.7222 * 6000 * 100))


def client_for(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_page_download_and_customer_card(shop, users, settings):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    churn_refresh()
    seller = client_for(shop["seller"])
    page = seller.get("/analytics/churn/").content.decode()
    assert "停了" in page and "投诉" not in page and "常客" not in page
    assert "No order for 150 days; usually every 30 days" in page
    assert ">72%<" in page
    assert "CSV" not in page  # sales do not export customers
    assert seller.get("/analytics/churn/?format=csv").status_code == 403
    manager = client_for(users[Role.MANAGER])
    page = manager.get("/analytics/churn/?min_risk=0.3").content.decode()
    assert "停了" in page and "投诉" not in page  # at 17%, below the 30% chosen
    download = manager.get("/analytics/churn/?format=csv").content.decode("utf-8-sig").splitlines()
    assert download[0].startswith("Customer number,Name,Churn risk,Value")
    assert len(download) == 2 and "停了" in download[1] and "No order for 150 days" in download[1]
    xlsx = manager.get("/analytics/churn/?format=xlsx")
    assert xlsx["Content-Disposition"] == 'attachment; filename="churn-risk.xlsx"'
    card = seller.get(f"/customers/{shop['stopped'].number}/").content.decode()
    assert 'id="churn-risk"' in card and "No order for 150 days; usually every 30 days" in card
    assert "Open churn follow-up" in card
    steady_card = manager.get(f"/customers/{shop['steady'].number}/").content.decode()
    assert "Nothing points to churn." in steady_card
    assert 'id="churn-link"' in client_for(users[Role.ANALYST]).get("/analytics/").content.decode()


def test_api_pages_with_reasons_in_the_callers_scope(shop, users, settings, api_client):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    churn_refresh()
    response = api_client(shop["seller"]).get("/api/v1/analytics/churn")
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert (item["number"], item["owner"], item["risk"]) == (shop["stopped"].number, "seller", 0.7222)
    assert item["reasons"][0] == {
        "key": "recency",
        "weight": 0.5,
        "text": "No order for 150 days; usually every 30 days",
        "params": {"days": 150, "gap": 30},
    }
    assert item["follow_up_id"] == FollowUp.objects.get().pk
    assert api_client(shop["other"]).get("/api/v1/analytics/churn").json()["items"] == []
    admin = api_client(users[Role.ADMINISTRATOR])
    first = admin.get("/api/v1/analytics/churn?min_risk=0.1&limit=1").json()
    assert [i["number"] for i in first["items"]] == [shop["stopped"].number]
    second = admin.get(f"/api/v1/analytics/churn?min_risk=0.1&limit=1&cursor={first['next_cursor']}").json()
    assert [i["number"] for i in second["items"]] == [shop["unhappy"].number] and second["next_cursor"] is None
    bad = admin.get("/api/v1/analytics/churn?min_risk=2")
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")


def test_cli_scores_and_makes_tasks_only_when_asked(shop, settings, capsys):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    call_command("analytics", "churn", "--json")
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (data["method"], data["customers"], data["at_risk"], data["tasks_created"]) == ("fixed", 3, 1, 0)
    assert data["top"][0]["reasons"] == ["recency", "frequency_drop"]
    assert not FollowUp.objects.exists()
    call_command("analytics", "churn", "--create-tasks")
    assert "1 follow-ups made" in capsys.readouterr().out
    assert FollowUp.objects.filter(customer=shop["stopped"]).count() == 1


def test_refresh_without_any_purchase_scores_nobody(db):
    run = churn_refresh()
    assert (run.customers, run.at_risk, run.tasks, run.result.method) == (0, 0, 0, "fixed")


def test_unowned_customers_go_to_the_first_administrator_and_archived_ones_lose_their_score(
    admin_user, users, settings
):
    settings.CIM_CHURN_TASK_VALUE_SHARE = 1.0
    nobody = make_customer(admin_user, display_name="无主")
    buy(nobody, admin_user, *monthly(150))
    assert churn_refresh().tasks == 1
    assert FollowUp.objects.get().owner == admin_user
    customer_archive(customer=nobody, actor=admin_user)
    assert churn_refresh().customers == 0
    score = CustomerScore.objects.get(customer=nobody)
    assert (score.churn_risk, score.churn_reasons) == (None, [])


def test_list_queries_do_not_grow_with_rows(shop, users, api_client, django_assert_max_num_queries):
    churn_refresh()
    client = api_client(users[Role.ADMINISTRATOR])
    with django_assert_max_num_queries(10) as one:
        assert len(client.get("/api/v1/analytics/churn?min_risk=0&limit=1").json()["items"]) == 1
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(client.get("/api/v1/analytics/churn?min_risk=0").json()["items"]) == 3
    page = client_for(users[Role.ADMINISTRATOR])
    with django_assert_max_num_queries(20) as one_page:
        assert page.get("/analytics/churn/?min_risk=0.3").content.decode().count("data-customer=") == 1
    CustomerScore.objects.update(churn_risk=0.6)
    with django_assert_max_num_queries(len(one_page.captured_queries)):
        assert page.get("/analytics/churn/?min_risk=0.3").content.decode().count("data-customer=") == 3
