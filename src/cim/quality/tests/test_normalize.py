"""Normalisation on the way in: what people type becomes one stored form, or a clear error with a code."""

import unicodedata

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from cim.quality.normalize import (
    _SPACES,
    _UNSTORABLE,
    clean_text,
    fold,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_uscc,
)

MOBILE = "+8613812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+8613812345678",
        "+86 138 1234 5678",
        "+86-138-1234-5678",
        "008613812345678",
        "0086 138 1234 5678",
        "(+86)13812345678",
        "(+86) 138-1234-5678",
        "86-13812345678",
        "8613812345678",
        "138 1234 5678",
        "138-1234-5678",
        "138.1234.5678",
        "  13812345678  ",
        "１３８１２３４５６７８",
        "＋８６　１３８　１２３４　５６７８",
    ],
)
def test_chinese_mobile_in_every_shape_becomes_e164(raw):
    assert normalize_phone(raw) == MOBILE


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("010-62345678", "+861062345678"),
        ("(010) 6234 5678", "+861062345678"),
        ("+86 10 6234 5678", "+861062345678"),
        ("021-12345678", "+862112345678"),
        ("0755-26543210", "+8675526543210"),
    ],
)
def test_landlines_keep_their_area_code(raw, e164):
    assert normalize_phone(raw) == e164


def test_foreign_numbers_with_country_code():
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


def test_region_argument_reads_numbers_without_country_code():
    assert normalize_phone("(650) 253-0000", region="US") == "+16502530000"


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "abc",
        "1381234567",  # one digit short
        "138123456789",  # one digit long
        "+86 138 1234 56789",
        "00000000000",
        "+86 138 1234 5678 999",
        "1" * 300,
    ],
)
def test_invalid_phones_raise_invalid_phone(raw):
    with pytest.raises(ValidationError) as info:
        normalize_phone(raw)
    assert info.value.code == "invalid_phone"


@pytest.mark.parametrize("raw", ["", "   ", None, "\u3000"])
def test_missing_phone_is_required(raw):
    with pytest.raises(ValidationError) as info:
        normalize_phone(raw)
    assert info.value.code == "required"


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("foo@example.com", "foo@example.com"),
        ("  Foo.Bar@Example.COM  ", "foo.bar@example.com"),
        ("ZHANG.SAN+crm@QQ.com", "zhang.san+crm@qq.com"),
        ("ｆｏｏ＠ｅｘａｍｐｌｅ．ｃｏｍ", "foo@example.com"),
        ("zhangsan＠163.com", "zhangsan@163.com"),
    ],
)
def test_emails_are_trimmed_folded_and_lower_cased(raw, address):
    assert normalize_email(raw) == address


@pytest.mark.parametrize(
    "raw", ["no-at", "a@b", "a@@b.com", "a b@c.com", "@example.com", "foo@", "foo@.com", "张三@", "x" * 300 + "@a.com"]
)
def test_invalid_emails_raise_invalid_email(raw):
    with pytest.raises(ValidationError) as info:
        normalize_email(raw)
    assert info.value.code == "invalid_email"


@pytest.mark.parametrize("raw", ["", "  ", None])
def test_missing_email_is_required(raw):
    with pytest.raises(ValidationError) as info:
        normalize_email(raw)
    assert info.value.code == "required"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("  张三  ", "张三"),
        ("张　三", "张 三"),  # ideographic space is a space
        ("ＪＯＨＮ　Ｓｍｉｔｈ", "JOHN Smith"),
        ("John   \t Smith", "John Smith"),
        ("北京字节跳动科技有限公司（北京）", "北京字节跳动科技有限公司（北京）"),  # as registered: （） kept
        ("ＡＢＣ（中国）有限公司", "ABC（中国）有限公司"),
        ("張三", "張三"),  # the script is kept as entered
        ("", ""),
        (None, ""),
    ],
)
def test_names_are_nfkc_half_width_single_spaced(raw, name):
    assert normalize_name(raw) == name


def test_clean_text_folds_full_width_digits_and_collapses_space():
    assert clean_text(" Ａ１２３\n\n  ｂ ") == "A123 b"


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_clean_text_of_printable_ascii_is_the_full_rule(text):
    full = _SPACES.sub(" ", unicodedata.normalize("NFKC", _UNSTORABLE.sub("", text))).strip()
    assert clean_text(text) == full


def test_clean_text_drops_characters_no_database_stores():
    # NUL is refused by PostgreSQL, a lone surrogate by UTF-8; neither is ever meant.
    assert clean_text("张\x00三\ud800\x07") == "张三"
    assert normalize_phone("138\x0012345678") == MOBILE
    assert normalize_name("\x00") == ""


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("張三", "张三"),
        ("張三豐", "张三丰"),
        ("北京位元組跳動", "北京位元组跳动"),
        ("陳國華", "陈国华"),
        ("张三", "张三"),  # simplified stays simplified
        ("ＪＯＨＮ Smith", "john smith"),
        ("  Ｚｈａｎｇ   San ", "zhang san"),
    ],
)
def test_fold_maps_traditional_to_simplified_and_lower_case(text, folded):
    assert fold(text) == folded


def _valid_uscc(base: str) -> str:
    return base + stdnum_uscc.calc_check_digit(base)


@pytest.mark.parametrize("base", ["91110108551385082", "91310000MA1FL0XY0", "12100000400010398"])
def test_valid_uscc_is_accepted_and_upper_cased(base):
    code = _valid_uscc(base)
    assert normalize_uscc(code) == code
    assert normalize_uscc(code.lower()) == code
    assert normalize_uscc(f" {code[:4]} {code[4:]} ") == code


def test_full_width_uscc_is_folded():
    code = _valid_uscc("91110108551385082")
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)
    assert normalize_uscc(full_width) == code


def test_uscc_with_wrong_check_digit_is_invalid():
    code = _valid_uscc("91110108551385082")
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(ValidationError) as info:
        normalize_uscc(wrong)
    assert info.value.code == "invalid_uscc"


@pytest.mark.parametrize("raw", ["123", "9111010855138508", "911101085513850823X", "ABCDEFGHIJKLMNOPQR", ""])
def test_malformed_uscc_is_invalid(raw):
    with pytest.raises(ValidationError) as info:
        normalize_uscc(raw)
    assert info.value.code == "invalid_uscc"


def test_notes_keep_their_line_breaks_and_lose_control_characters():
    from cim.quality.normalize import clean_paragraphs

    assert clean_paragraphs("第一行  \r\n第二行\x00\r\n\r\nＡＢＣ ") == "第一行\n第二行\n\nABC"


def test_the_chinese_mobile_fast_path_agrees_with_phonenumbers():
    """Every 3-digit mobile prefix in every written shape: the fast path and the library give the same answer."""
    import phonenumbers

    for prefix in range(100, 200):
        for tail in ("00000000", "12345678", "99999999"):
            national = f"{prefix}{tail}"
            parsed = phonenumbers.parse(national, "CN")
            expected = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(parsed)
                else None
            )
            for written in (
                national,
                f"+86 {national}",
                f"86{national}",
                f"{national[:3]}-{national[3:7]}-{national[7:]}",
            ):
                try:
                    got = normalize_phone(written)
                except ValidationError:
                    got = None
                assert got == expected, written
