"""The settings of tickets and surveys: `CIM_*` environment variables, overridable in Django settings.

Read on every use, so a changed setting (or a test's override) applies at once. See docs/configuration.md.
"""

import os
from datetime import timedelta

from django.conf import settings


def _value(name: str, default: str) -> str:
    return str(getattr(settings, name, os.environ.get(name, default)))


def _flag(name: str, default: bool) -> bool:
    return _value(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def business_hours() -> str:
    """Working periods of a business day, e.g. `09:00-18:00` or `09:00-12:00,13:30-18:00`."""
    return _value("CIM_BUSINESS_HOURS", "09:00-18:00")


def business_days() -> str:
    """ISO weekdays that are business days (1 = Monday), e.g. `1-5` or `1,2,3,4,5,6`."""
    return _value("CIM_BUSINESS_DAYS", "1-5")


def business_holidays() -> str:
    """`cn`: China's statutory holidays and make-up workdays (chinese-calendar); `none`: weekdays only."""
    return _value("CIM_BUSINESS_HOLIDAYS", "cn")


def at_risk() -> timedelta:
    """How close to its deadline an open ticket counts as at risk."""
    return timedelta(minutes=int(_value("CIM_SLA_AT_RISK_MINUTES", "60")))


def site_url() -> str:
    """The address customers and staff reach CIM at, for links in emails and text messages."""
    return _value("CIM_SITE_URL", "http://127.0.0.1:8000").rstrip("/")


def survey_after_ticket() -> bool:
    """Send a CSAT survey when a ticket is resolved."""
    return _flag("CIM_SURVEY_AFTER_TICKET", True)


def survey_after_order() -> str:
    """The survey sent when an order is paid through the page or the API: "csat", "nps", or "" (none)."""
    kind = _value("CIM_SURVEY_AFTER_ORDER", "").strip().lower()
    return kind if kind in ("csat", "nps") else ""


def survey_valid_for() -> timedelta:
    return timedelta(days=int(_value("CIM_SURVEY_DAYS", "14")))


def survey_rate_per_ip() -> str:
    return _value("CIM_SURVEY_RATE_PER_IP", "30/h")
