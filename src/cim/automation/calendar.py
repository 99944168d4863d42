"""The care calendar (客户关怀日历): festivals, China's statutory holidays, and the customers a date concerns.

Three sources, each from a maintained package (docs/care.md):
- Chinese lunar festivals (除夕, 春节, 元宵, 端午, 七夕, 中秋, 重阳) and lunar birthdays, from lunar-python's month
  tables (first day and length of each lunar month, leap months included), for any year it covers (1–9999).
- Gregorian days people send greetings on (New Year's Day, Valentine's Day, Women's Day, Labour Day, Mother's Day,
  Children's Day, Father's Day, Teachers' Day, National Day, Christmas), by rule.
- China's statutory holidays and make-up workdays (调休) from chinese-calendar, which carries each year's State
  Council schedule (upgrade it every December): business-day logic moves call tasks off days off. Years it does
  not know yet count Monday–Friday as workdays.

`customers_on_date` answers "whose birthday / anniversary / N days since the last order is it on this day" in a
few indexed queries, so a date trigger over a million customers takes well under a second: the birthday stays
encrypted, and its month-day (solar and lunar) is kept only as a keyed hash (`birthday_md_key`,
`lunar_birthday_md_key`, cim.core.blind_index) to be matched exactly.
"""

import bisect
import calendar as gregorian
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _
from lunar_python import LunarYear, Solar

from cim.core.blind_index import blind_index
from cim.service.business_hours import HOLIDAY_NAMES

# The blind-index kinds of a birthday's month-day (`MM-DD`), on the solar and on the lunar calendar.
BIRTHDAY_MD = "birthday_md"
LUNAR_BIRTHDAY_MD = "lunar_birthday_md"


class Festival(models.TextChoices):
    """Days of the year on which every customer may be greeted."""

    NEW_YEAR = "new_year", _("New Year's Day")
    VALENTINES_DAY = "valentines_day", _("Valentine's Day")
    WOMENS_DAY = "womens_day", _("Women's Day")
    LABOUR_DAY = "labour_day", _("Labour Day")
    MOTHERS_DAY = "mothers_day", _("Mother's Day")
    CHILDRENS_DAY = "childrens_day", _("Children's Day")
    FATHERS_DAY = "fathers_day", _("Father's Day")
    TEACHERS_DAY = "teachers_day", _("Teachers' Day")
    NATIONAL_DAY = "national_day", _("National Day")
    CHRISTMAS = "christmas", _("Christmas")
    NEW_YEARS_EVE = "new_years_eve", _("Chinese New Year's Eve")
    SPRING_FESTIVAL = "spring_festival", _("Spring Festival")
    LANTERN_FESTIVAL = "lantern_festival", _("Lantern Festival")
    DRAGON_BOAT_FESTIVAL = "dragon_boat_festival", _("Dragon Boat Festival")
    QIXI = "qixi", _("Qixi Festival")
    MID_AUTUMN_FESTIVAL = "mid_autumn_festival", _("Mid-Autumn Festival")
    DOUBLE_NINTH_FESTIVAL = "double_ninth_festival", _("Double Ninth Festival")


class DateKind(models.TextChoices):
    """Days that belong to one customer: what `customers_on_date` selects by, beside the festivals."""

    BIRTHDAY = "birthday", _("Birthday")
    LUNAR_BIRTHDAY = "lunar_birthday", _("Lunar birthday")
    ANNIVERSARY = "anniversary", _("Customer anniversary")
    DATE_FIELD = "date_field", _("Date field")
    DAYS_SINCE_LAST_ORDER = "days_since_last_order", _("Days since the last order")
    DAYS_SINCE_LAST_CONTACT = "days_since_last_contact", _("Days since the last contact")


# Lunar festivals by (lunar month, lunar day); New Year's Eve is the day before the Spring Festival, the 29th or
# the 30th of the twelfth month, whichever ends the year.
LUNAR_FESTIVALS = {
    Festival.SPRING_FESTIVAL: (1, 1),
    Festival.LANTERN_FESTIVAL: (1, 15),
    Festival.DRAGON_BOAT_FESTIVAL: (5, 5),
    Festival.QIXI: (7, 7),
    Festival.MID_AUTUMN_FESTIVAL: (8, 15),
    Festival.DOUBLE_NINTH_FESTIVAL: (9, 9),
}
FIXED_FESTIVALS = {
    Festival.NEW_YEAR: (1, 1),
    Festival.VALENTINES_DAY: (2, 14),
    Festival.WOMENS_DAY: (3, 8),
    Festival.LABOUR_DAY: (5, 1),
    Festival.CHILDRENS_DAY: (6, 1),
    Festival.TEACHERS_DAY: (9, 10),
    Festival.NATIONAL_DAY: (10, 1),
    Festival.CHRISTMAS: (12, 25),
}
# (month, which Sunday): Mother's Day is the second Sunday of May, Father's Day the third of June.
SUNDAY_FESTIVALS = {Festival.MOTHERS_DAY: (5, 2), Festival.FATHERS_DAY: (6, 3)}


# --- the lunar calendar -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LunarDate:
    year: int
    month: int  # 1–12; a leap month (闰月) has the number of the month it follows, with `leap` set
    day: int
    leap: bool
    month_days: int  # 29 or 30: the length of this lunar month


@dataclass(frozen=True)
class _Month:
    first: int  # date.toordinal() of the month's first day
    year: int
    month: int
    leap: bool
    days: int


@lru_cache(maxsize=256)
def _lunar_months(year: int) -> tuple[_Month, ...]:
    """The lunar months lunar-python lists for lunar year `year`: from the 11th month of the year before to the
    12th of this one, which covers every day of Gregorian year `year`."""
    months = []
    for m in LunarYear.fromYear(year).getMonths():
        first = Solar.fromJulianDay(m.getFirstJulianDay())
        ordinal = date(first.getYear(), first.getMonth(), first.getDay()).toordinal()
        months.append(_Month(ordinal, m.getYear(), abs(m.getMonth()), m.isLeap(), m.getDayCount()))
    return tuple(months)


@lru_cache(maxsize=65536)
def lunar_date(day: date) -> LunarDate:
    """The lunar date of a Gregorian day, e.g. 2026-02-17 → year 2026, month 1, day 1."""
    months = _lunar_months(day.year)
    ordinal = day.toordinal()
    index = bisect.bisect_right([m.first for m in months], ordinal) - 1
    m = months[index]
    return LunarDate(m.year, m.month, ordinal - m.first + 1, m.leap, m.days)


def lunar_to_solar(year: int, month: int, day: int, *, leap: bool = False) -> date:
    """The Gregorian day of a lunar date; ValueError for a day the lunar month does not have."""
    for m in _lunar_months(year):
        if m.year == year and m.month == month and m.leap == leap:
            if not 1 <= day <= m.days:
                raise ValueError(f"lunar {year}-{month}{' (leap)' if leap else ''} has {m.days} days, not {day}")
            return date.fromordinal(m.first + day - 1)
    raise ValueError(f"lunar year {year} has no {'leap ' if leap else ''}month {month}")


# --- festivals ----------------------------------------------------------------------------------------------------


def festival_date(festival: str, year: int) -> date:
    """The Gregorian day of `festival` in Gregorian year `year`."""
    festival = Festival(festival)
    if festival in FIXED_FESTIVALS:
        return date(year, *FIXED_FESTIVALS[festival])
    if festival in SUNDAY_FESTIVALS:
        month, nth = SUNDAY_FESTIVALS[festival]
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))
    if festival == Festival.NEW_YEARS_EVE:
        # The last day of the lunar year that ends in this Gregorian year: always in January or February.
        return lunar_to_solar(year, 1, 1) - timedelta(days=1)
    return lunar_to_solar(year, *LUNAR_FESTIVALS[festival])


@dataclass(frozen=True)
class FestivalDay:
    day: date
    festival: Festival
    lunar: bool

    @property
    def label(self) -> str:
        return str(self.festival.label)


def festivals_between(start: date, end: date) -> list[FestivalDay]:
    """Every festival from `start` to `end`, both included, in date order."""
    found = []
    for year in range(start.year, end.year + 1):
        for festival in Festival:
            day = festival_date(festival, year)
            if start <= day <= end:
                lunar = festival in LUNAR_FESTIVALS or festival == Festival.NEW_YEARS_EVE
                found.append(FestivalDay(day, festival, lunar))
    return sorted(found, key=lambda f: (f.day, f.festival))


def festivals_on(day: date) -> list[Festival]:
    return [f.festival for f in festivals_between(day, day)]


# --- statutory holidays and workdays ------------------------------------------------------------------------------


class DayOff(models.TextChoices):
    HOLIDAY = "holiday", _("Statutory holiday")
    MAKEUP_WORKDAY = "makeup_workday", _("Make-up workday")


@dataclass(frozen=True)
class StatutoryDay:
    day: date
    kind: DayOff
    name: str  # the holiday it belongs to, translated ("Spring Festival")


def _holiday_name(english: str | None) -> str:
    return str(HOLIDAY_NAMES.get(english, english or ""))


def statutory_days(start: date, end: date) -> list[StatutoryDay]:
    """China's statutory holidays and make-up workdays (调休) from `start` to `end`, as chinese-calendar knows them."""
    found = []
    tables = ((chinese_calendar.holidays, DayOff.HOLIDAY), (chinese_calendar.workdays, DayOff.MAKEUP_WORKDAY))
    for table, kind in tables:
        found.extend(StatutoryDay(day, kind, _holiday_name(name)) for day, name in table.items() if start <= day <= end)
    return sorted(found, key=lambda d: d.day)


def is_workday(day: date) -> bool:
    """A working day in China: a weekday that is no statutory holiday, or a make-up workday on a weekend."""
    if day in chinese_calendar.workdays:
        return True
    if day in chinese_calendar.holidays:
        return False
    return day.weekday() < 5


def next_workday(day: date) -> date:
    """`day` itself when it is a workday, else the first workday after it."""
    while not is_workday(day):
        day += timedelta(days=1)
    return day


# --- month-day keys of birthdays ----------------------------------------------------------------------------------


def _as_date(value) -> date | None:
    if isinstance(value, str):
        return date.fromisoformat(value) if value else None
    return value


def solar_month_day(value) -> str:
    """`MM-DD` of a birthday (the text its `birthday_md_key` hashes); empty without one."""
    day = _as_date(value)
    return f"{day.month:02d}-{day.day:02d}" if day else ""


def lunar_month_day(value) -> str:
    """`MM-DD` of a birthday on the lunar calendar. Born in a leap month (闰月): the month of the same number, which
    is how the birthday is kept in the years without that leap month, and in the years with it too (docs/care.md)."""
    day = _as_date(value)
    if not day:
        return ""
    lunar = lunar_date(day)
    return f"{lunar.month:02d}-{lunar.day:02d}"


def solar_birthday_keys(on: date) -> list[str]:
    """The keys of the birthdays celebrated on `on`: 29 February birthdays are kept on 28 February in other years."""
    days = [f"{on.month:02d}-{on.day:02d}"]
    if (on.month, on.day) == (2, 28) and not gregorian.isleap(on.year):
        days.append("02-29")
    return [blind_index(BIRTHDAY_MD, d) for d in days]


def lunar_birthday_keys(on: date) -> list[str]:
    """The keys of the lunar birthdays celebrated on `on`. A 30th is kept on the 29th in a month of 29 days; in a
    leap month nobody's lunar birthday falls (it is kept in the regular month of that number)."""
    lunar = lunar_date(on)
    if lunar.leap:
        return []
    days = [f"{lunar.month:02d}-{lunar.day:02d}"]
    if lunar.day == 29 and lunar.month_days == 29:
        days.append(f"{lunar.month:02d}-30")
    return [blind_index(LUNAR_BIRTHDAY_MD, d) for d in days]


# --- customers on a date ------------------------------------------------------------------------------------------

# Plain date and time fields of the customer a yearly anniversary or "N days after" may be counted from.
CUSTOMER_DATE_FIELDS = ("created_at", "reviewed_at")


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def business_today() -> date:
    """Today in the business time zone (`CIM_TIME_ZONE`): the day care plans and the calendar mean."""
    return datetime.now(_zone()).date()


def _day_range(day: date) -> tuple[datetime, datetime]:
    """The business time zone's day as [start, end) instants: what a date means for a timestamp column."""
    zone = _zone()
    return datetime.combine(day, time.min, zone), datetime.combine(day + timedelta(days=1), time.min, zone)


def _on_day_q(field: str, day: date) -> Q:
    start, end = _day_range(day)
    return Q(**{f"{field}__gte": start, f"{field}__lt": end})


def eligible_customers() -> QuerySet:
    """Customers who may be cared for: neither archived nor merged into another record."""
    from cim.customers.models import Customer

    return Customer.objects.exclude(status=Customer.Status.ARCHIVED).filter(merged_into__isnull=True)


def _anniversary_q(field: str, on: date) -> Q:
    """Customers whose `field` fell on this month-day of an earlier year (29 February → 28 February in other years):
    one indexed range per year, not a month/day extraction that no index serves."""
    from django.db.models import Min

    from cim.customers.models import Customer

    first = Customer.objects.aggregate(first=Min(field))["first"]
    if first is None:
        return Q(pk__in=[])
    first_year = first.astimezone(_zone()).year if isinstance(first, datetime) else first.year
    condition = Q(pk__in=[])
    for year in range(first_year, on.year):
        days = []
        if (on.month, on.day) != (2, 29) or gregorian.isleap(year):
            days.append(date(year, on.month, on.day))
        if (on.month, on.day) == (2, 28) and not gregorian.isleap(on.year) and gregorian.isleap(year):
            days.append(date(year, 2, 29))
        for day in days:
            condition |= _on_day_q(field, day)
    return condition


def _date_field(field: str | None) -> str:
    field = field or "created_at"
    if field not in CUSTOMER_DATE_FIELDS:
        raise ValueError(f"no date field {field!r} to count from: one of {', '.join(CUSTOMER_DATE_FIELDS)}")
    return field


# A cancelled order or one never paid is no purchase: "days since the last order" counts from the last real one.
COUNTED_ORDER_STATUSES = ("paid", "partially_refunded", "refunded")


def _last_on_day(model, time_field: str, day: date, **extra) -> QuerySet:
    """Customers with a row of `model` on `day` and none after it: their last one was that day."""
    start, end = _day_range(day)
    rows = model.objects.filter(**extra)
    later = rows.filter(customer_id=OuterRef("pk"), **{f"{time_field}__gte": end})
    on_day = rows.filter(**{f"{time_field}__gte": start, f"{time_field}__lt": end}).values("customer_id")
    return eligible_customers().filter(pk__in=on_day).filter(~Exists(later))


def customers_on_date(*, kind: str, on: date, offset_days: int = 0, field: str | None = None) -> QuerySet:
    """The customers for whom `on` is `offset_days` after their day of `kind` (negative: before it).

    `kind` is a DateKind or a Festival. A customer's day + `offset_days` == `on`, so "3 days before the birthday"
    is `kind="birthday", offset_days=-3`, "30 days since the last order" is `kind="days_since_last_order",
    offset_days=30`, and a festival selects every eligible customer on the day (offset) it falls. `field` names the
    date field for `anniversary` (yearly) and `date_field` (once), `created_at` by default. Archived and merged
    customers are left out; consent and processing restrictions are the sender's to check (messages_queue).
    Set-based: a few indexed queries, whatever the number of customers.
    """
    day = on - timedelta(days=offset_days)
    customers = eligible_customers()
    if kind in Festival.values:
        return customers if festival_date(kind, day.year) == day else customers.none()
    match kind:
        case DateKind.BIRTHDAY:
            return customers.filter(birthday_md_key__in=solar_birthday_keys(day))
        case DateKind.LUNAR_BIRTHDAY:
            keys = lunar_birthday_keys(day)
            return customers.filter(keeps_lunar_birthday=True, lunar_birthday_md_key__in=keys)
        case DateKind.ANNIVERSARY:
            return customers.filter(_anniversary_q(_date_field(field), day))
        case DateKind.DATE_FIELD:
            return customers.filter(_on_day_q(_date_field(field), day))
        case DateKind.DAYS_SINCE_LAST_ORDER:
            from cim.activities.models import Order

            return _last_on_day(Order, "ordered_at", day, status__in=COUNTED_ORDER_STATUSES)
        case DateKind.DAYS_SINCE_LAST_CONTACT:
            from cim.activities.models import Interaction

            return _last_on_day(Interaction, "occurred_at", day)
    raise ValueError(f"unknown date kind {kind!r}")
