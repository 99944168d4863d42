"""Business hours: the calendar SLA clocks run on.

A business day is a configured weekday (Monday–Friday by default) that is not one of China's statutory holidays,
or a make-up workday (调休) that falls on a weekend; the holiday tables come from the maintained
`chinese-calendar` package, which carries each year's State Council schedule (upgrade it every December). Years it
does not know yet count weekdays only. Working periods (09:00–18:00 by default, a lunch break if configured) are
in `settings.TIME_ZONE`; all arithmetic is on UTC instants, so it holds across daylight-saving changes too.
"""

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from cim.service import conf

# How far ahead `add_business_minutes` looks before deciding the calendar has no business time at all.
_HORIZON_DAYS = 3660
HOLIDAY_NAMES = {
    "New Year's Day": _("New Year's Day"),
    "Spring Festival": _("Spring Festival"),
    "Tomb-sweeping Day": _("Tomb-sweeping Day"),
    "Labour Day": _("Labour Day"),
    "Dragon Boat Festival": _("Dragon Boat Festival"),
    "National Day": _("National Day"),
    "Mid-autumn Festival": _("Mid-autumn Festival"),
    "Anti-Fascist 70th Day": _("Anti-Fascist 70th Day"),
}
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    periods: tuple[tuple[time, time], ...]
    weekdays: frozenset[int]  # date.weekday(): 0 is Monday
    statutory: bool

    def is_business_day(self, day: date) -> bool:
        if self.statutory:
            if day in chinese_calendar.workdays:
                return True
            if day in chinese_calendar.holidays:
                return False
        return day.weekday() in self.weekdays

    def periods_of(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working periods as UTC instants; none on a day off."""
        if not self.is_business_day(day):
            return []
        return [
            (
                datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC),
                datetime.combine(day, end, tzinfo=self.zone).astimezone(UTC),
            )
            for start, end in self.periods
        ]

    def days_from(self, moment: datetime) -> Iterator[date]:
        day = moment.astimezone(self.zone).date()
        for offset in range(_HORIZON_DAYS):
            yield day + timedelta(days=offset)


def _parse_periods(text: str) -> tuple[tuple[time, time], ...]:
    periods = []
    for part in text.split(","):
        match = _PERIOD.match(part)
        if not match:
            raise ImproperlyConfigured(f"CIM_BUSINESS_HOURS: “{part}” is not a period like 09:00-18:00.")
        h1, m1, h2, m2 = map(int, match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ImproperlyConfigured(f"CIM_BUSINESS_HOURS: “{part}” is not a time of day.")
        end = time.max if (h2, m2) == (24, 0) else time(h2, m2)
        periods.append((time(h1, m1), end))
    periods.sort()
    for (start, end), following in zip(periods, [*periods[1:], None], strict=True):
        if start >= end or (following and following[0] < end):
            raise ImproperlyConfigured("CIM_BUSINESS_HOURS: periods must be in order and must not overlap.")
    return tuple(periods)


def _parse_weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        try:
            days.update(range(int(first), int(last or first) + 1))
        except ValueError:
            raise ImproperlyConfigured(f"CIM_BUSINESS_DAYS: “{part}” is not a weekday number (1–7).") from None
    if not days or not days <= set(range(1, 8)):
        raise ImproperlyConfigured("CIM_BUSINESS_DAYS: name weekdays 1 (Monday) to 7 (Sunday).")
    return frozenset(d - 1 for d in days)


@functools.lru_cache(maxsize=8)
def _calendar(zone: str, hours: str, days: str, holidays: str) -> Calendar:
    if holidays not in ("cn", "none"):
        raise ImproperlyConfigured("CIM_BUSINESS_HOLIDAYS is `cn` or `none`.")
    return Calendar(ZoneInfo(zone), _parse_periods(hours), _parse_weekdays(days), holidays == "cn")


def business_calendar() -> Calendar:
    """The configured calendar (parsed once per configuration)."""
    return _calendar(settings.TIME_ZONE, conf.business_hours(), conf.business_days(), conf.business_holidays())


def add_business_minutes(start: datetime, minutes: float) -> datetime:
    """The moment `minutes` of business time after `start` (an aware datetime); time outside business hours
    does not count, so a clock started on Friday evening begins on the next business morning."""
    remaining = timedelta(minutes=minutes)
    if remaining <= timedelta(0):
        return start
    calendar = business_calendar()
    for day in calendar.days_from(start):
        for opens, closes in calendar.periods_of(day):
            if closes <= start:
                continue
            begin = max(opens, start)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
    raise ImproperlyConfigured("The business calendar has no business hours in the next ten years.")


def business_minutes_between(a: datetime, b: datetime) -> float:
    """Minutes of business time from `a` to `b`; 0 when `b` is not after `a`."""
    if b <= a:
        return 0.0
    calendar = business_calendar()
    total = timedelta(0)
    last = b.astimezone(calendar.zone).date()
    for day in calendar.days_from(a):
        if day > last:
            break
        for opens, closes in calendar.periods_of(day):
            begin, end = max(opens, a), min(closes, b)
            if end > begin:
                total += end - begin
    return total.total_seconds() / 60


def sla_due(start: datetime, minutes: float, *, business_hours: bool) -> datetime:
    """A deadline `minutes` after `start`: in business time, or around the clock."""
    return add_business_minutes(start, minutes) if business_hours else start + timedelta(minutes=minutes)


def sla_minutes_between(a: datetime, b: datetime, *, business_hours: bool) -> float:
    if business_hours:
        return business_minutes_between(a, b)
    return max((b - a).total_seconds() / 60, 0.0)


def special_days(year: int) -> list[tuple[date, object, bool]]:
    """The year's statutory holidays and make-up workdays: (day, name, is_workday), for the settings page."""
    if not business_calendar().statutory:
        return []
    rows = [
        (day, HOLIDAY_NAMES.get(name, name), workday)
        for table, workday in ((chinese_calendar.holidays, False), (chinese_calendar.workdays, True))
        for day, name in table.items()
        if day.year == year
    ]
    return sorted(rows, key=lambda row: row[0])
