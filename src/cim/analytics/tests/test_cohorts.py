"""Cohort retention on hand-built orders: who came back in which month after their first, per first-order month."""

from datetime import date

import pytest
from django.core.management import call_command

from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter
from cim.analytics.tests.test_dashboard import buy
from cim.customers.choices import SourceChannel
from cim.customers.tests.factories import make_customer

TO_APRIL = DashboardFilter(period="custom", start=date(2026, 1, 1), end=date(2026, 4, 30))


@pytest.fixture
def cohorts(admin_user):
    """January: four customers (a, b, c website; d referral); February: e. Who comes back when is below."""
    people = {
        name: make_customer(admin_user, display_name=name, source_channel=channel)
        for name, channel in [("a", "website"), ("b", "website"), ("c", "website"), ("d", "referral"), ("e", "website")]
    }
    plan = {
        "a": ["2026-01-03", "2026-01-20", "2026-02-10", "2026-03-05"],  # two in January: still month 0
        "b": ["2026-01-09", "2026-03-15"],
        "c": ["2026-01-30", "2026-05-02"],  # May is after the period: not seen
        "d": ["2026-01-12", "2026-02-01"],
        "e": ["2026-02-14", "2026-03-01", "2026-04-30"],
    }
    for name, days in plan.items():
        for day in days:
            buy(people[name], admin_user, day, "10")
    buy(people["c"], admin_user, "2026-02-20", "10", status="cancelled")  # not a purchase
    return people


def test_known_retention(cohorts):
    result = cohort_retention(TO_APRIL)
    rows = {f"{c.month:%Y-%m}": (c.customers, c.active, [round(r, 2) for r in c.retention]) for c in result.cohorts}
    assert rows == {
        "2026-01": (4, [4, 2, 2, 0], [1.0, 0.5, 0.5, 0.0]),
        "2026-02": (1, [1, 1, 1], [1.0, 1.0, 1.0]),
    }
    assert result.start == date(2025, 5, 1)  # at least twelve months up to the period's end
    assert result.months == 4


def test_channel_filter_changes_the_cohorts(cohorts):
    website = cohort_retention(TO_APRIL.model_copy(update={"channel": SourceChannel.WEBSITE}))
    assert [(c.customers, c.active) for c in website.cohorts] == [(3, [3, 1, 2, 0]), (1, [1, 1, 1])]


def test_cli_prints_cohorts_as_json(cohorts, capsys):
    call_command("analytics", "cohorts", "--from", "2026-01-01", "--to", "2026-04-30", "--json")
    data = __import__("json").loads(capsys.readouterr().out)
    assert [row["active"] for row in data["cohorts"]] == [[4, 2, 2, 0], [1, 1, 1]]


def test_api_returns_cohorts(cohorts, api_client, users):
    response = api_client(users["analyst"]).get("/api/v1/analytics/cohorts?from=2026-01-01&to=2026-04-30&period=custom")
    assert response.status_code == 200
    assert [row["customers"] for row in response.json()["cohorts"]] == [4, 1]
