"""Fixtures of the service tests: a controllable clock, the business calendar pinned, customers with contacts."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.utils import timezone

from cim.customers.tests.factories import make_customer
from cim.service import surveys

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """`2026-03-09 10:00` in Beijing time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _calendar(settings):
    """The defaults, whatever the environment says: 09:00–18:00, Monday–Friday, China's holidays."""
    settings.TIME_ZONE = "Asia/Shanghai"
    settings.CIM_BUSINESS_HOURS = "09:00-18:00"
    settings.CIM_BUSINESS_DAYS = "1-5"
    settings.CIM_BUSINESS_HOLIDAYS = "cn"
    settings.CIM_SURVEY_AFTER_TICKET = True
    settings.CIM_SITE_URL = "https://cim.example.com"
    settings.CIM_SLA_AT_RISK_MINUTES = 60
    settings.DEFAULT_FROM_EMAIL = "CIM <noreply@example.com>"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def set(self, text: str) -> datetime:
        self.now = at(text)
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` under the test's control; it starts on Monday 2026-03-09 at 10:00 in Beijing."""
    current = Clock(at("2026-03-09 10:00"))
    monkeypatch.setattr(timezone, "now", lambda: current.now)
    return current


@pytest.fixture
def customer(admin_user, users):
    return make_customer(
        admin_user,
        display_name="王小明",
        emails=[{"address": "xiaoming@example.com"}],
        phones=[{"number": "13812345678"}],
        owner_id=users["sales"].pk,
    )


@pytest.fixture
def agent(users):
    """A service agent with an email address, in the shared team."""
    user = users["service"]
    user.email = "agent@example.com"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def issued(monkeypatch) -> dict[int, str]:
    """Survey id → the token of the last link sent for it, as the customer receives it."""
    tokens: dict[int, str] = {}
    real = surveys.survey_token

    def record(survey, nonce):
        tokens[survey.pk] = real(survey, nonce)
        return tokens[survey.pk]

    monkeypatch.setattr(surveys, "survey_token", record)
    return tokens
