"""Business hours: weekends, China's 2026 Spring Festival holiday and its make-up Saturdays, lunch breaks, years
the holiday tables do not cover, and daylight-saving days elsewhere."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cim.service.business_hours import (
    add_business_minutes,
    business_calendar,
    business_minutes_between,
    special_days,
)
from cim.service.tests.conftest import at


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        ("2026-03-09 10:00", 60, "2026-03-09 11:00"),  # Monday, inside the day
        ("2026-03-09 17:00", 60, "2026-03-09 18:00"),  # ends exactly at closing time, not the next morning
        ("2026-03-09 07:00", 30, "2026-03-09 09:30"),  # before opening: starts at 09:00
        ("2026-03-09 20:00", 30, "2026-03-10 09:30"),  # after closing: the next morning
        ("2026-03-06 17:30", 60, "2026-03-09 09:30"),  # Friday evening: over an ordinary weekend
        ("2026-03-07 11:00", 60, "2026-03-09 10:00"),  # from a Saturday
        ("2026-03-09 10:00", 1620, "2026-03-12 10:00"),  # three business days
        # Spring Festival 2026: off from Sunday 15 to Monday 23 February; Saturdays 14 and 28 are workdays.
        ("2026-02-13 17:00", 120, "2026-02-14 10:00"),  # Friday → the make-up Saturday
        ("2026-02-14 17:30", 60, "2026-02-24 09:30"),  # the make-up Saturday → after the holiday
        ("2026-02-15 10:00", 30, "2026-02-24 09:30"),  # opened during the holiday
        ("2026-02-27 17:30", 60, "2026-02-28 09:30"),  # Friday → the second make-up Saturday
        ("2026-02-13 09:00", 1620, "2026-02-24 18:00"),  # three business days: Fri 13, Sat 14, Tue 24
        ("2026-09-30 17:00", 120, "2026-10-08 10:00"),  # National Day: 1–7 October off
        ("2026-01-09 17:00", 120, "2026-01-12 10:00"),  # an ordinary January weekend
        ("2026-03-09 10:00", 0, "2026-03-09 10:00"),
    ],
)
def test_add_business_minutes(start, minutes, due):
    assert add_business_minutes(at(start), minutes) == at(due)


@pytest.mark.parametrize(
    ("a", "b", "minutes"),
    [
        ("2026-03-09 10:00", "2026-03-09 11:30", 90),
        ("2026-03-06 17:00", "2026-03-09 10:00", 120),  # the weekend counts nothing
        ("2026-02-13 09:00", "2026-02-24 18:00", 1620),  # Fri 13, the make-up Sat 14, Tue 24: the holiday is free
        ("2026-02-15 00:00", "2026-02-23 23:59", 0),  # the whole holiday
        ("2026-02-28 08:00", "2026-03-01 12:00", 540),  # make-up Saturday counts, the Sunday after does not
        ("2026-03-07 00:00", "2026-03-08 23:00", 0),  # an ordinary weekend
        ("2026-03-09 12:00", "2026-03-09 11:00", 0),  # backwards
    ],
)
def test_business_minutes_between(a, b, minutes):
    assert business_minutes_between(at(a), at(b)) == minutes


def test_results_are_instants_whatever_the_input_zone():
    start = at("2026-03-09 17:30").astimezone(UTC)
    assert add_business_minutes(start, 60) == at("2026-03-10 09:30")
    assert business_minutes_between(start, at("2026-03-10 09:30").astimezone(UTC)) == 60


def test_lunch_break(settings):
    settings.CIM_BUSINESS_HOURS = "09:00-12:00,13:30-18:00"
    assert add_business_minutes(at("2026-03-09 11:30"), 60) == at("2026-03-09 14:00")
    assert add_business_minutes(at("2026-03-09 12:15"), 30) == at("2026-03-09 14:00")
    assert business_minutes_between(at("2026-03-09 09:00"), at("2026-03-09 18:00")) == 450


def test_six_day_week_without_holidays(settings):
    settings.CIM_BUSINESS_DAYS = "1-6"
    settings.CIM_BUSINESS_HOLIDAYS = "none"
    assert add_business_minutes(at("2026-03-06 17:30"), 60) == at("2026-03-07 09:30")  # Saturday works
    assert add_business_minutes(at("2026-02-16 10:00"), 60) == at("2026-02-16 11:00")  # holidays ignored
    assert add_business_minutes(at("2026-02-28 17:30"), 60) == at("2026-03-02 09:30")  # Sunday still off


def test_years_without_holiday_data_count_weekdays():
    # chinese-calendar carries no 2030 schedule yet: New Year's Day is then an ordinary Tuesday.
    assert add_business_minutes(at("2029-12-31 17:00"), 120) == at("2030-01-01 10:00")
    assert business_calendar().is_business_day(datetime(2030, 1, 1).date())
    assert not business_calendar().is_business_day(datetime(2026, 1, 1).date())


def test_daylight_saving_days_have_their_real_length(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    settings.CIM_BUSINESS_HOURS = "00:00-12:00"
    settings.CIM_BUSINESS_DAYS = "1-7"
    settings.CIM_BUSINESS_HOLIDAYS = "none"
    berlin = ZoneInfo("Europe/Berlin")
    sunday = datetime(2026, 3, 29, 0, 0, tzinfo=berlin)  # clocks jump from 02:00 to 03:00
    assert business_minutes_between(sunday, sunday.replace(hour=12)) == 660
    assert add_business_minutes(sunday, 660) == datetime(2026, 3, 29, 12, 0, tzinfo=berlin)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CIM_BUSINESS_HOURS", "9-18"),
        ("CIM_BUSINESS_HOURS", "18:00-09:00"),
        ("CIM_BUSINESS_HOURS", "09:00-13:00,12:00-18:00"),
        ("CIM_BUSINESS_DAYS", "0-5"),
        ("CIM_BUSINESS_DAYS", "mon"),
        ("CIM_BUSINESS_HOLIDAYS", "us"),
    ],
)
def test_bad_configuration_is_refused(settings, name, value):
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured):
        add_business_minutes(at("2026-03-09 10:00"), 60)


def test_special_days_of_2026():
    with translation.override("en"):
        days = {day.isoformat(): (str(name), workday) for day, name, workday in special_days(2026)}
    assert days["2026-02-14"] == ("Spring Festival", True)
    assert days["2026-02-28"] == ("Spring Festival", True)
    assert days["2026-02-16"] == ("Spring Festival", False)
    assert "2026-03-09" not in days


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),
    minutes=st.integers(min_value=1, max_value=20000),
)
def test_adding_then_measuring_gives_the_same_minutes(start, minutes):
    begin = start.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    due = add_business_minutes(begin, minutes)
    assert due > begin
    assert business_minutes_between(begin, due) == pytest.approx(minutes)
    assert business_minutes_between(begin, due - timedelta(seconds=1)) < minutes
