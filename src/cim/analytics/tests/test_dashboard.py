"""The dashboard's figures on hand-built orders, answers and tickets: known answers, and filters that change them."""

import itertools
import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from cim.accounts.models import Team
from cim.accounts.roles import Role
from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_create
from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter, dashboard, dashboard_filter
from cim.analytics.models import CustomerScore
from cim.customers.choices import SourceChannel
from cim.customers.models import Customer
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.segments.services import segment_create, segment_members_add
from cim.service.models import Survey, Ticket
from cim.service.services import ticket_create

JANUARY = DashboardFilter(period="custom", start=date(2026, 1, 1), end=date(2026, 1, 31))
_tokens = itertools.count()


def at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(f"{day}T{hour:02d}:00"))


def buy(customer, actor, day: str, amount: str, **fields):
    data = OrderInput(ordered_at=at(day), lines=[{"name": "茶", "unit_price": amount}], **fields)
    return order_create(customer=customer, data=data, actor=actor)


def answer(customer, kind: str, score: int, day: str):
    return Survey.objects.create(
        kind=kind,
        customer=customer,
        channel="email",
        token_digest=f"{next(_tokens):064d}",
        expires_at=at(day) + timedelta(days=30),
        answered_at=at(day),
        score=score,
    )


@pytest.fixture
def shop(admin_user):
    """Four customers in two channels, one team, with January orders, answers, tickets and churn scores."""
    team = Team.objects.create(name="华南销售部")
    a = make_customer(admin_user, display_name="甲", source_channel="website", team_id=team.pk)
    b = make_customer(admin_user, display_name="乙", source_channel="referral")
    c = make_customer(admin_user, display_name="丙", source_channel="website", team_id=team.pk)
    e = make_customer(admin_user, display_name="戊", source_channel="referral")
    gone = make_customer(admin_user, display_name="丁", source_channel="website")
    customer_archive(customer=gone, actor=admin_user)
    Customer.objects.filter(pk__in=[a.pk, b.pk]).update(created_at=at("2026-01-03"))
    Customer.objects.filter(pk__in=[c.pk, e.pk, gone.pk]).update(created_at=at("2025-06-01"))
    buy(a, admin_user, "2026-01-05", "100")
    buy(a, admin_user, "2026-01-20", "50")
    buy(a, admin_user, "2026-02-05", "999")  # after the period
    buy(b, admin_user, "2025-12-10", "80")  # before it: makes b a repeat buyer
    buy(b, admin_user, "2026-01-15", "30", status="partially_refunded", refunded=Decimal("10"))
    buy(c, admin_user, "2026-01-10", "70", status="cancelled")
    buy(e, admin_user, "2026-01-25", "40")
    for customer, kind, score in [(a, "nps", 10), (b, "nps", 9), (e, "nps", 5), (a, "csat", 5), (e, "csat", 2)]:
        answer(customer, kind, score, "2026-01-18")
    answer(a, "nps", 0, "2026-02-18")  # after the period
    late = ticket_create(customer=a, subject="慢", channel="phone", actor=admin_user)
    Ticket.objects.filter(pk=late.pk).update(resolution_due=timezone.now() - timedelta(hours=1))
    ticket_create(customer=e, subject="问", channel="phone", actor=admin_user)
    return {"team": team, "a": a, "b": b, "c": c, "e": e, "admin": admin_user}


def test_known_answers_for_a_month(shop):
    board = dashboard(JANUARY)
    assert (board.start, board.end) == (date(2026, 1, 1), date(2026, 1, 31))
    assert board.customers == 4  # the archived one is not counted
    assert board.new_customers == 2
    assert [(key, n) for key, _label, n in board.new_by_channel] == [("referral", 1), ("website", 1)]
    assert board.active_customers == 3  # the cancelled order makes no customer active
    assert board.orders == 4
    assert board.revenue == pytest.approx(100 + 50 + 20 + 40)  # the refund is taken off
    assert board.repeat_rate == pytest.approx(2 / 3)  # a bought twice in January, b in December and January
    assert board.nps == pytest.approx(33.3) and board.nps_answers == 3  # 2 promoters, 1 detractor of 3
    assert board.csat == pytest.approx(50.0) and board.csat_answers == 2
    assert (board.open_tickets, board.sla_breached) == (2, 1)
    assert board.at_risk_value is None  # churn risk not computed yet: shown as "—", not 0
    assert board.trend_unit == "day"
    assert [(day.isoformat(), revenue, n) for day, revenue, n, _active in board.trend] == [
        ("2026-01-05", 100.0, 1),
        ("2026-01-15", 20.0, 1),
        ("2026-01-20", 50.0, 1),
        ("2026-01-25", 40.0, 1),
    ]


def test_filters_change_the_numbers(shop):
    website = dashboard(JANUARY.model_copy(update={"channel": SourceChannel.WEBSITE}))
    assert (website.customers, website.active_customers, website.revenue) == (2, 1, 150.0)
    assert website.repeat_rate == 1.0 and website.nps_answers == 1 and website.open_tickets == 1
    team = dashboard(JANUARY.model_copy(update={"team_id": shop["team"].pk}))
    assert (team.customers, team.active_customers, team.orders) == (2, 1, 2)
    listing = segment_create(actor=shop["admin"], name="名单", kind="static")
    segment_members_add(segment=listing, customer_ids=[shop["b"].pk, shop["e"].pk], actor=shop["admin"])
    members = dashboard(
        dashboard_filter({"period": "custom", "from": "2026-01-01", "to": "2026-01-31", "segment": listing.pk})
    )
    assert (members.customers, members.active_customers, members.revenue) == (2, 2, 60.0)
    assert cohort_retention(JANUARY.model_copy(update={"segment": listing.pk})).cohorts[0].customers == 1
    year = dashboard(DashboardFilter(period="custom", start=date(2025, 1, 1), end=date(2026, 12, 31)))
    assert year.trend_unit == "month" and year.orders == 6 and year.revenue == pytest.approx(1289)


def test_at_risk_value_sums_lifetime_value_else_total_spent(shop):
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(customer=shop["a"], churn_risk=0.8, clv=Decimal("500"), total_spent=Decimal("150")),
            CustomerScore(customer=shop["b"], churn_risk=0.7, total_spent=Decimal("100")),
            CustomerScore(customer=shop["e"], churn_risk=0.2, clv=Decimal("9999")),
        ]
    )
    board = dashboard(JANUARY)
    assert (board.at_risk_customers, board.at_risk_value) == (2, 600.0)
    assert dashboard(JANUARY.model_copy(update={"channel": SourceChannel.REFERRAL})).at_risk_value == 100.0


def test_presets_and_custom_periods():
    today = date(2026, 12, 3)
    assert DashboardFilter().bounds(today) == (date(2026, 11, 4), today)
    assert DashboardFilter(period="90d").bounds(today) == (date(2026, 9, 5), today)
    assert DashboardFilter(period="year").bounds(today) == (date(2026, 1, 1), today)
    assert dashboard_filter({"from": "2026-01-01", "to": "2026-01-31"}) == JANUARY
    with override("en"), pytest.raises(ValidationError) as error:
        dashboard_filter({"from": "2026-02-01", "to": "2026-01-01"})
    assert "comes before" in str(error.value)
    with pytest.raises(ValidationError) as error:
        dashboard_filter({"channel": "pigeon"})
    assert "channel" in error.value.message_dict


def test_cached_render_reads_no_database(shop):
    dashboard(JANUARY)
    with CaptureQueriesContext(connection) as queries:
        board = dashboard(JANUARY)
    assert len(queries) == 0 and board.orders == 4


def client_for(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_page_shows_the_figures_for_the_filters(shop, users):
    client = client_for(users[Role.ANALYST])
    january = {"period": "30d", "from": "2026-01-01", "to": "2026-01-31", "channel": "website"}  # typed days win
    page = client.get("/dashboard/", january).content.decode()
    assert "2026-01-01 to 2026-01-31" in page
    assert re.search(r'data-kpi="revenue">.*?>150<', page, re.S)
    assert re.search(r'data-kpi="at-risk">.*?>—<', page, re.S)
    assert 'id="dashboard-data"' in page and 'href="/dashboard/"' in page
    wrong = client.get("/dashboard/", {"from": "2026-02-01", "to": "2026-01-01"}).content.decode()
    assert "comes before" in wrong and "Showing the last 30 days instead." in wrong


def test_page_is_for_analytics_roles(users):
    assert client_for(users[Role.SALES]).get("/dashboard/").status_code == 403
    assert 'href="/dashboard/"' not in client_for(users[Role.SALES]).get("/").content.decode()


def test_api_and_cli_give_the_same_figures(shop, api_client, users, capsys):
    query = "/api/v1/analytics/dashboard?from=2026-01-01&to=2026-01-31&team_id={}"  # days alone: a custom period
    data = api_client(users[Role.MANAGER]).get(query.format(shop["team"].pk)).json()
    assert (data["customers"], data["active_customers"], data["revenue"]) == (2, 1, 150.0)
    assert data["trend"][0] == {"period": "2026-01-05", "revenue": 100.0, "orders": 1, "active_customers": 1}
    bad = api_client(users[Role.MANAGER]).get("/api/v1/analytics/dashboard?period=custom&from=2026-01-01")
    assert bad.status_code in (400, 422) and bad.json()["code"]
    call_command("analytics", "dashboard", "--from", "2026-01-01", "--to", "2026-01-31", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert (printed["revenue"], printed["new_by_channel"]) == (210.0, {"referral": 1, "website": 1})


def test_a_cached_page_runs_no_aggregate(shop, users):
    client = client_for(users[Role.ANALYST])
    january = {"from": "2026-01-01", "to": "2026-01-31"}
    client.get("/dashboard/", january)  # computes and caches the figures and the cohorts
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dashboard/", january).status_code == 200
    # The session, the user, the teams of the filter, the navigation bar's follow-ups and notifications: no query
    # touches orders, tickets, surveys or scores.
    tables = ("activities_order", "service_ticket", "service_survey", "analytics_customerscore", "customers_customer")
    assert not [q["sql"] for q in queries if any(table in q["sql"] for table in tables)]
    assert len(queries) <= 7
