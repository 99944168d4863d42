"""Customer numbers: readable, checkable, and never issued twice, whatever the scheme becomes."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from cim.customers import configuration
from cim.customers.models import NumberingScheme
from cim.customers.numbering import (
    format_number,
    is_valid_number,
    luhn_check_digit,
    normalize_number,
    numbers_allocate,
    scheme_get,
)
from cim.customers.selectors import customer_get
from cim.customers.tests.factories import make_customer

DAY = date(2026, 11, 5)


def _scheme(**fields) -> NumberingScheme:
    values = {"prefix": "C", "date_part": "%Y", "sequence_width": 6, "check_digit": True} | fields
    return NumberingScheme(**values)


def test_default_format_has_prefix_year_sequence_and_luhn_check_digit():
    assert format_number(_scheme(), 123, DAY) == "C2026-000123-3"


def test_year_and_month_date_part():
    assert format_number(_scheme(date_part="%Y%m"), 7, DAY) == "C202611-000007-5"


def test_without_date_part():
    assert format_number(_scheme(date_part=""), 123, DAY) == "C-000123-0"


def test_without_check_digit():
    assert format_number(_scheme(check_digit=False), 123, DAY) == "C2026-000123"


def test_sequence_wider_than_width_is_not_truncated():
    assert format_number(_scheme(sequence_width=3, check_digit=False), 12345, DAY) == "C2026-12345"


@pytest.mark.parametrize(
    "scheme",
    [
        _scheme(),
        _scheme(date_part="%Y%m"),
        _scheme(date_part=""),
        _scheme(check_digit=False),
        _scheme(prefix="", date_part=""),
        _scheme(prefix="VIPCUS", sequence_width=12),
    ],
)
def test_every_formatted_number_is_valid(scheme):
    for sequence in (1, 9, 10, 123, 999_999, 1_000_000):
        assert is_valid_number(format_number(scheme, sequence, DAY))


@pytest.mark.parametrize(
    "number",
    [
        "C2026-000123-0",  # wrong check digit
        "C2026-000123-9",
        "C202611-000007-4",
        "C-000123-1",
        "C2026-000124-3",  # right digit of another sequence
    ],
)
def test_wrong_check_digit_is_rejected(number):
    assert not is_valid_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "",
        None,
        "hello",
        "C2026000123",
        "C2026-",
        "C2026--3",
        "C2026-000123-33",
        "c2026-000123-3",  # the look-up normalises case first; the shape itself is upper-case
        "TOOLONGP2026-000123-3",
        "C2026-0001234567890-1",
        "C2026-000123-3; DROP TABLE",
        "１２３",
        "C2026-000 123-3",
    ],
)
def test_garbage_is_rejected(number):
    assert not is_valid_number(number)


def test_normalize_number_trims_and_upper_cases():
    assert normalize_number("  c2026-000123-3 \n") == "C2026-000123-3"
    assert normalize_number(None) == ""


def test_allocate_returns_n_distinct_valid_numbers_in_sequence(db):
    numbers = numbers_allocate(25)
    assert len(numbers) == 25
    assert len(set(numbers)) == 25
    assert all(is_valid_number(n) for n in numbers)
    year = timezone.localdate().strftime("%Y")
    assert numbers[0] == f"C{year}-000001-" + numbers[0][-1]
    assert numbers[-1].startswith(f"C{year}-000025-")
    assert scheme_get().next_sequence == 26


def test_allocate_zero_or_negative_returns_nothing_and_uses_no_sequence(db):
    assert numbers_allocate(0) == []
    assert numbers_allocate(-3) == []
    assert scheme_get().next_sequence == 1


def test_successive_allocations_never_overlap(db):
    first, second = numbers_allocate(3), numbers_allocate(3)
    assert not set(first) & set(second)


def test_scheme_change_keeps_the_sequence_and_old_numbers_stay_valid(db, admin_user):
    before = numbers_allocate(3)
    configuration.numbering_scheme_update(
        actor=admin_user, prefix="kh", date_part="", sequence_width=4, check_digit=False
    )
    after = numbers_allocate(2)
    assert after == ["KH-0004", "KH-0005"]
    assert not set(before) & set(after)
    assert all(is_valid_number(n) for n in before + after)


def test_scheme_change_back_never_reissues_a_number(db, admin_user):
    issued = set(numbers_allocate(2))
    configuration.numbering_scheme_update(
        actor=admin_user, prefix="X", date_part="%Y%m", sequence_width=8, check_digit=True
    )
    issued |= set(numbers_allocate(2))
    configuration.numbering_scheme_update(
        actor=admin_user, prefix="C", date_part="%Y", sequence_width=6, check_digit=True
    )
    again = numbers_allocate(2)
    assert not issued & set(again)
    assert scheme_get().next_sequence == 7


def test_customers_keep_their_number_after_a_scheme_change(db, admin_user):
    old = make_customer(admin_user, display_name="张三")
    configuration.numbering_scheme_update(
        actor=admin_user, prefix="VIP", date_part="", sequence_width=5, check_digit=True
    )
    new = make_customer(admin_user, display_name="李四")
    assert new.number.startswith("VIP-")
    assert customer_get(user=admin_user, number=old.number) == old
    assert customer_get(user=admin_user, number=new.number.lower()) == new


def test_stale_scheme_object_cannot_rewind_the_sequence(db, admin_user):
    stale = scheme_get()
    numbers_allocate(5)
    stale.prefix = "Z"  # an out-of-date copy, as an admin form might hold
    configuration.numbering_scheme_update(
        actor=admin_user, prefix="Z", date_part="%Y", sequence_width=6, check_digit=True
    )
    assert scheme_get().next_sequence == 6
    assert numbers_allocate(1)[0].startswith("Z")


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"prefix": "C1"}, "prefix"),
        ({"prefix": "客户"}, "prefix"),
        ({"prefix": "ABCDEFG"}, "prefix"),
        ({"sequence_width": 2}, "sequence_width"),
        ({"sequence_width": 13}, "sequence_width"),
        ({"date_part": "%d"}, "date_part"),
    ],
)
def test_scheme_update_rejects_bad_values(db, admin_user, fields, error_field):
    values = {"prefix": "C", "date_part": "%Y", "sequence_width": 6, "check_digit": True} | fields
    with pytest.raises(ValidationError) as info:
        configuration.numbering_scheme_update(actor=admin_user, **values)
    assert error_field in info.value.message_dict
    assert scheme_get().prefix == "C"


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_the_fast_check_digit_is_stdnums(digits):
    assert luhn_check_digit(digits) == luhn.calc_check_digit(digits)
