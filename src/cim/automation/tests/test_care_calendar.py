"""The care calendar: known answers for lunar festivals and China's make-up workdays, and the customers a date
selects (birthdays solar and lunar, anniversaries, days since the last order or contact)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from cim.activities.history_schemas import InteractionInput, OrderInput
from cim.activities.interactions import interaction_log
from cim.activities.orders import order_create
from cim.automation.calendar import (
    DateKind,
    DayOff,
    Festival,
    customers_on_date,
    festival_date,
    festivals_between,
    is_workday,
    lunar_date,
    lunar_month_day,
    lunar_to_solar,
    next_workday,
    statutory_days,
)
from cim.customers.models import Customer, derived_updates
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_archive, customer_update
from cim.customers.tests.factories import make_customer
from cim.search.services import search_index_rebuild


@pytest.mark.parametrize(
    ("festival", "year", "expected"),
    [
        (Festival.SPRING_FESTIVAL, 2026, date(2026, 2, 17)),
        (Festival.SPRING_FESTIVAL, 2027, date(2027, 2, 6)),
        (Festival.SPRING_FESTIVAL, 2025, date(2025, 1, 29)),
        (Festival.NEW_YEARS_EVE, 2026, date(2026, 2, 16)),  # 腊月廿九: the 12th month of 2025 has 29 days
        (Festival.NEW_YEARS_EVE, 2024, date(2024, 2, 9)),  # 腊月三十
        (Festival.LANTERN_FESTIVAL, 2026, date(2026, 3, 3)),
        (Festival.DRAGON_BOAT_FESTIVAL, 2026, date(2026, 6, 19)),
        (Festival.QIXI, 2026, date(2026, 8, 19)),
        (Festival.MID_AUTUMN_FESTIVAL, 2026, date(2026, 9, 25)),
        (Festival.MID_AUTUMN_FESTIVAL, 2025, date(2025, 10, 6)),
        (Festival.DOUBLE_NINTH_FESTIVAL, 2026, date(2026, 10, 18)),
        (Festival.MOTHERS_DAY, 2026, date(2026, 5, 10)),
        (Festival.FATHERS_DAY, 2026, date(2026, 6, 21)),
        (Festival.CHRISTMAS, 2026, date(2026, 12, 25)),
    ],
)
def test_festival_dates_are_the_known_ones(festival, year, expected):
    assert festival_date(festival, year) == expected


def test_the_festivals_match_chinese_calendar_statutory_holidays():
    """Two maintained sources agree: the lunar festivals fall inside the State Council's holidays for them."""
    holidays = {d.day for d in statutory_days(date(2025, 1, 1), date(2026, 12, 31)) if d.kind == DayOff.HOLIDAY}
    for year in (2025, 2026):
        for festival in (Festival.SPRING_FESTIVAL, Festival.DRAGON_BOAT_FESTIVAL, Festival.MID_AUTUMN_FESTIVAL):
            assert festival_date(festival, year) in holidays


def test_lunar_dates_round_trip_and_leap_months_are_told_apart():
    assert lunar_date(date(2026, 2, 17)) == lunar_date(date(2026, 2, 17))
    first = lunar_date(date(2026, 2, 17))
    assert (first.year, first.month, first.day, first.leap) == (2026, 1, 1, False)
    # 2023 had a leap second month (闰二月): 2023-03-22 is its first day.
    leap = lunar_date(date(2023, 3, 22))
    assert (leap.month, leap.day, leap.leap) == (2, 1, True)
    assert lunar_to_solar(2023, 2, 1, leap=True) == date(2023, 3, 22)
    assert lunar_to_solar(2023, 2, 1) == date(2023, 2, 20)
    with pytest.raises(ValueError):
        lunar_to_solar(2025, 12, 30)  # that month has 29 days
    day = date(1990, 1, 1)
    while day < date(1992, 1, 1):
        lunar = lunar_date(day)
        assert lunar_to_solar(lunar.year, lunar.month, lunar.day, leap=lunar.leap) == day
        day += timedelta(days=1)


def test_festivals_between_lists_both_calendars_in_order():
    found = festivals_between(date(2026, 2, 1), date(2026, 3, 10))
    assert [(f.day, f.festival, f.lunar) for f in found] == [
        (date(2026, 2, 14), Festival.VALENTINES_DAY, False),
        (date(2026, 2, 16), Festival.NEW_YEARS_EVE, True),
        (date(2026, 2, 17), Festival.SPRING_FESTIVAL, True),
        (date(2026, 3, 3), Festival.LANTERN_FESTIVAL, True),
        (date(2026, 3, 8), Festival.WOMENS_DAY, False),
    ]


def test_make_up_workdays_and_statutory_holidays():
    # 2026 Spring Festival: 15–23 February off, Saturday 14 and Saturday 28 February worked (调休).
    assert is_workday(date(2026, 2, 14)) and date(2026, 2, 14).weekday() == 5
    assert is_workday(date(2026, 2, 28))
    assert not is_workday(date(2026, 2, 16)) and date(2026, 2, 16).weekday() == 0
    # 2025: Sunday 26 January and Saturday 8 February worked; National Day week off.
    assert is_workday(date(2025, 1, 26)) and is_workday(date(2025, 2, 8))
    assert not is_workday(date(2025, 10, 8))
    assert is_workday(date(2025, 9, 28))
    assert next_workday(date(2026, 2, 15)) == date(2026, 2, 24)
    assert next_workday(date(2026, 2, 13)) == date(2026, 2, 13)
    makeup = [d.day for d in statutory_days(date(2026, 1, 1), date(2026, 3, 31)) if d.kind == DayOff.MAKEUP_WORKDAY]
    assert makeup == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28)]
    # A year chinese-calendar does not know yet counts Monday to Friday.
    assert is_workday(date(2099, 1, 1)) and not is_workday(date(2099, 1, 3))


def _ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_birthdays_are_found_by_their_keyed_month_day(admin_user):
    fang = make_customer(admin_user, display_name="王芳", birthday=date(1990, 12, 3))
    make_customer(admin_user, display_name="李四", birthday=date(1990, 12, 4))
    make_customer(admin_user, display_name="张三")
    fang.refresh_from_db()
    # The month-day is not stored in plaintext: only its keyed hash.
    assert fang.birthday_md_key and "12-03" not in fang.birthday_md_key
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 12, 3))) == {fang.pk}
    # Three days before the birthday: the greeting goes out on the 30th of November.
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 11, 30), offset_days=-3)) == {fang.pk}
    assert not customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 12, 5)).exists()
    customer_archive(customer=fang, actor=admin_user)
    assert not customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 12, 3)).exists()


def test_29_february_birthdays_are_kept_on_28_february_in_other_years(admin_user):
    leap = make_customer(admin_user, display_name="闰日", birthday=date(2000, 2, 29))
    eve = make_customer(admin_user, display_name="前日", birthday=date(2001, 2, 28))
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2027, 2, 28))) == {leap.pk, eve.pk}
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2028, 2, 28))) == {eve.pk}
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2028, 2, 29))) == {leap.pk}


def test_lunar_birthdays_only_for_customers_who_keep_them(admin_user):
    # Born 1990-01-27, the first day of the first lunar month: the lunar birthday is each Spring Festival.
    keeps = make_customer(admin_user, display_name="王芳", birthday=date(1990, 1, 27), keeps_lunar_birthday=True)
    make_customer(admin_user, display_name="李四", birthday=date(1990, 1, 27))
    assert lunar_month_day(date(1990, 1, 27)) == "01-01"
    assert _ids(customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=date(2026, 2, 17))) == {keeps.pk}
    assert _ids(customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=date(2027, 2, 6))) == {keeps.pk}
    assert not customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=date(2026, 1, 27)).exists()


def test_a_lunar_30th_is_kept_on_the_29th_of_a_short_month(admin_user):
    # 1990-01-26 was 腊月三十 (the 12th month of 1989 had 30 days); in 2026 the 12th month of 2025 has 29.
    born = date(1990, 1, 26)
    assert lunar_month_day(born) == "12-30"
    customer = make_customer(admin_user, display_name="除夕生", birthday=born, keeps_lunar_birthday=True)
    assert _ids(customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=date(2026, 2, 16))) == {customer.pk}


def test_born_in_a_leap_month_keeps_the_regular_month(admin_user):
    # 2023-03-22 was the first day of the leap second month; the birthday is the first of the second month.
    customer = make_customer(admin_user, display_name="闰月生", birthday=date(2023, 3, 22), keeps_lunar_birthday=True)
    assert lunar_month_day(date(2023, 3, 22)) == "02-01"
    second_month_2026 = lunar_to_solar(2026, 2, 1)
    assert _ids(customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=second_month_2026)) == {customer.pk}
    # In a leap month nobody's lunar birthday falls: it is kept in the month of that number, once.
    assert not customers_on_date(kind=DateKind.LUNAR_BIRTHDAY, on=date(2023, 3, 22)).exists()


def test_keys_follow_the_birthday_on_every_write_path(admin_user):
    customer = make_customer(admin_user, display_name="王芳", birthday=date(1990, 5, 17))
    customer_update(customer=customer, data=CustomerInput(birthday=date(1991, 6, 18)), actor=admin_user)
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 6, 18))) == {customer.pk}
    assert not customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 5, 17)).exists()
    # Queryset updates (merges) take the keys from derived_updates.
    values = {"birthday": date(1992, 7, 19)}
    Customer.objects.filter(pk=customer.pk).update(**values, **derived_updates(values))
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 7, 19))) == {customer.pk}
    # A new search key: the rebuild recomputes them.
    Customer.objects.filter(pk=customer.pk).update(birthday_md_key="", lunar_birthday_md_key="")
    search_index_rebuild()
    assert _ids(customers_on_date(kind=DateKind.BIRTHDAY, on=date(2026, 7, 19))) == {customer.pk}


def test_customer_anniversaries_count_from_joining(admin_user):
    zone = ZoneInfo(settings.TIME_ZONE)
    old = make_customer(admin_user, display_name="老客户")
    new = make_customer(admin_user, display_name="新客户")
    Customer.objects.filter(pk=old.pk).update(created_at=datetime(2023, 12, 3, 23, 30, tzinfo=zone))
    Customer.objects.filter(pk=new.pk).update(created_at=datetime(2026, 12, 3, 9, 0, tzinfo=zone))
    assert _ids(customers_on_date(kind=DateKind.ANNIVERSARY, on=date(2026, 12, 3))) == {old.pk}
    # "30 days after joining", once: a plain date-field day.
    assert _ids(customers_on_date(kind=DateKind.DATE_FIELD, on=date(2027, 1, 2), offset_days=30)) == {new.pk}
    with pytest.raises(ValueError):
        customers_on_date(kind=DateKind.ANNIVERSARY, on=date(2026, 12, 3), field="birthday")


def test_days_since_the_last_order_and_contact(admin_user):
    zone = ZoneInfo(settings.TIME_ZONE)
    quiet = make_customer(admin_user, display_name="沉默")
    busy = make_customer(admin_user, display_name="常客")
    for customer, days in ((quiet, [40, 30]), (busy, [30, 5])):
        for ago in days:
            at = datetime(2026, 12, 3, 10, tzinfo=zone) - timedelta(days=ago)
            line = {"name": "茶叶", "quantity": 1, "unit_price": Decimal("88.00")}
            order_create(customer=customer, data=OrderInput(ordered_at=at, lines=[line]), actor=admin_user)
            interaction_log(
                customer=customer, data=InteractionInput(kind="call", occurred_at=at, subject="回访"), actor=admin_user
            )
    on = date(2026, 12, 3)
    assert _ids(customers_on_date(kind=DateKind.DAYS_SINCE_LAST_ORDER, on=on, offset_days=30)) == {quiet.pk}
    assert _ids(customers_on_date(kind=DateKind.DAYS_SINCE_LAST_CONTACT, on=on, offset_days=30)) == {quiet.pk}
    assert _ids(customers_on_date(kind=DateKind.DAYS_SINCE_LAST_ORDER, on=on, offset_days=5)) == {busy.pk}


def test_a_festival_selects_every_eligible_customer_on_its_day(admin_user):
    fang = make_customer(admin_user, display_name="王芳")
    assert _ids(customers_on_date(kind=Festival.SPRING_FESTIVAL, on=date(2026, 2, 17))) == {fang.pk}
    assert _ids(customers_on_date(kind=Festival.SPRING_FESTIVAL, on=date(2026, 2, 14), offset_days=-3)) == {fang.pk}
    assert not customers_on_date(kind=Festival.SPRING_FESTIVAL, on=date(2026, 2, 18)).exists()
    with pytest.raises(ValueError):
        customers_on_date(kind="nameday", on=date(2026, 2, 17))
