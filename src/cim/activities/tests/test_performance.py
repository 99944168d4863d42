"""Staff performance: known answers for each figure, the scope of who sees whom, and the page, export, API, CLI."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from cim.accounts.roles import Role
from cim.activities.history_schemas import InteractionInput, OrderInput
from cim.activities.interactions import interaction_log
from cim.activities.models import FollowUp
from cim.activities.orders import order_create
from cim.activities.performance import performance_report
from cim.customers.tests.factories import make_customer
from cim.service.models import Survey, Ticket
from cim.service.services import ticket_create


@pytest.fixture
def world(users, admin_user):
    """The sales user owns two customers; one bought in both periods, one only in the period before."""
    now = timezone.now()
    sales = users[Role.SALES]
    kept = make_customer(admin_user, display_name="回头客", owner_id=sales.pk)
    lost = make_customer(admin_user, display_name="流失客", owner_id=sales.pk)
    for customer, days_ago, price in ((kept, 40, "100"), (kept, 5, "250.50"), (lost, 45, "80")):
        order_create(
            customer=customer,
            data=OrderInput(ordered_at=now - timedelta(days=days_ago), lines=[{"name": "茶", "unit_price": price}]),
            actor=admin_user,
        )
    for due_days, done_days in ((-2, -3), (-2, -1), (-1, None)):  # on time, late, open and overdue
        FollowUp.objects.create(
            customer=kept,
            title="回访",
            owner=sales,
            due_at=now + timedelta(days=due_days),
            status=FollowUp.Status.DONE if done_days else FollowUp.Status.OPEN,
            done_at=now + timedelta(days=done_days) if done_days else None,
        )
    interaction_log(customer=kept, data=InteractionInput(kind="call"), actor=sales)
    service = users[Role.SERVICE]
    ticket = ticket_create(customer=kept, subject="破损", channel="phone", actor=admin_user, assignee=service)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=now - timedelta(hours=5),
        first_responded_at=now - timedelta(hours=4),
        first_response_due=now - timedelta(hours=4, minutes=30),
        resolved_at=now - timedelta(hours=1),
        status="resolved",
    )
    second = ticket_create(customer=kept, subject="咨询", channel="web", actor=admin_user, assignee=service)
    for about, score in ((ticket, 5), (second, 2)):
        Survey.objects.create(
            kind="csat", customer=kept, ticket=about, channel="email", token_digest=f"d{score}",
            expires_at=now + timedelta(days=1), answered_at=now, score=score,
        )  # fmt: skip
    return {"sales": sales, "service": service}


def test_each_figure_has_its_known_answer(world, admin_user):
    report = performance_report(user=admin_user)
    rows = {row.user.username: row.figures for row in report.staff}
    sales, service = rows[world["sales"].username], rows[world["service"].username]
    assert sales.customers == 2
    assert (sales.follow_ups_done, sales.follow_ups_on_time, sales.follow_ups_overdue) == (2, 1, 1)
    assert sales.on_time_rate == 0.5
    assert sales.interactions == 1
    assert (sales.earlier_buyers, sales.retained, sales.retention) == (2, 1, 0.5)
    assert str(sales.revenue) == "250.50"
    assert (service.tickets_resolved, service.first_response_breaches) == (1, 1)
    assert service.first_response_minutes == pytest.approx(60)
    assert service.resolution_hours == pytest.approx(4)
    assert (service.csat_answers, service.csat) == (2, 0.5)
    [team] = report.teams
    assert (team.members, team.figures.customers, team.figures.follow_ups_done) == (len(Role), 2, 2)


def test_sales_see_only_themselves_and_managers_their_team(world, users, make_user, other_team):
    make_user(Role.SALES, username="别队销售", team=other_team)
    assert [r.user for r in performance_report(user=world["sales"]).staff] == [world["sales"]]
    names = {r.user.username for r in performance_report(user=users[Role.MANAGER]).staff}
    assert world["sales"].username in names and "别队销售" not in names


def test_page_export_api_and_cli(world, admin_user, api_client, users, capsys):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    page = client.get("/activities/performance/")
    assert page.status_code == 200 and "Staff performance" in page.content.decode()
    assert client.get("/activities/performance/?since=2026-02-30&until=soon").status_code == 200  # default period
    csv = client.get("/activities/performance/?format=csv").content.decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("Staff,Team,Customers owned") and "250.5" in csv
    xlsx = client.get("/activities/performance/?format=xlsx")
    assert xlsx.content[:2] == b"PK"
    sales = Client()
    sales.force_login(world["sales"])
    assert sales.get("/activities/performance/").status_code == 403
    assert client.get("/activities/performance/?since=2026-05-01&until=2026-04-01").status_code == 200
    api = api_client(admin_user)
    assert api.get("/api/v1/performance?since=0405-08-07T08:07:10Z").status_code == 422
    data = api.get("/api/v1/performance").json()
    assert {row["username"]: row["figures"]["customers"] for row in data["staff"]}[world["sales"].username] == 2
    call_command("performance", "--json")
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert any(row["username"] == world["service"].username and row["csat_answers"] == 2 for row in printed["staff"])
