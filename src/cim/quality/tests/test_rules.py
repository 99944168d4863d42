"""The normalisation rules added for matching: birthdays, resident ID numbers, addresses, name pinyin and Latin
name order; and the property every rule keeps: applying it twice changes nothing."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from cim.quality.names import latin_name_key, name_pinyin, plain_pinyin
from cim.quality.normalize import (
    clean_paragraphs,
    clean_text,
    fold,
    normalize_email,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    parse_birthday,
    split_address,
)


@pytest.mark.parametrize(
    "text",
    ["1990-01-02", "1990/1/2", "1990.1.2", "19900102", "1990年1月2日", "1990 年 1 月 2 日", "1990-01-02 00:00:00"],
)
def test_birthdays_in_the_forms_people_write(text):
    assert parse_birthday(text) == date(1990, 1, 2)


@pytest.mark.parametrize("text", ["01/02/1990", "02.01.1990", "1990-02-30", "1899-12-31", "hello", "", "1990-13-01"])
def test_ambiguous_impossible_or_ancient_birthdays_are_refused(text):
    assert parse_birthday(text) is None


def test_a_birthday_in_the_future_is_refused():
    assert parse_birthday((date.today() + timedelta(days=1)).isoformat()) is None


@pytest.mark.parametrize(
    "raw",
    ["11010519491231002X", "11010519491231002x", " 110105 19491231 002X ", "１１０１０５１９４９１２３１００２Ｘ"],
)
def test_resident_id_numbers_are_checked_and_upper_cased(raw):
    assert normalize_id_number(raw) == "11010519491231002X"


@pytest.mark.parametrize("raw", ["110105194912310021", "11010519491331002X", "1101051949123100", "abcdefghijklmnopqr"])
def test_wrong_resident_id_numbers_raise_invalid_id_number(raw):
    with pytest.raises(ValidationError) as error:
        normalize_id_number(raw)
    assert error.value.code == "invalid_id_number"


@pytest.mark.parametrize(
    ("normalize", "raw"),
    [(normalize_phone, "1.38123E+10"), (normalize_phone, "1.38E10"), (normalize_id_number, "4.40305E+17")],
)
def test_numbers_excel_wrote_in_scientific_notation_are_refused_as_digits_lost(normalize, raw):
    with pytest.raises(ValidationError) as error:
        normalize(raw)
    assert error.value.code == "digits_lost"


@pytest.mark.parametrize(
    ("text", "province", "city", "district", "street", "adcode"),
    [
        ("广东省深圳市南山区科技园南路88号", "广东省", "深圳市", "南山区", "科技园南路88号", "440305"),
        ("深圳市南山区科技园南路88号", "广东省", "深圳市", "南山区", "科技园南路88号", "440305"),
        ("北京朝阳区建国路1号", "北京市", "北京市", "朝阳区", "建国路1号", "110105"),
        ("上海市浦东新区世纪大道100号", "上海市", "上海市", "浦东新区", "世纪大道100号", "310115"),
        ("科技园南路88号", "", "", "", "科技园南路88号", ""),
    ],
)
def test_chinese_addresses_split_into_divisions_with_their_adcode(text, province, city, district, street, adcode):
    assert split_address(text) == {
        "province": province,
        "city": city,
        "district": district,
        "street": street,
        "adcode": adcode,
    }


@pytest.mark.parametrize(
    ("name", "syllables"),
    [
        ("单雄信", ["shan", "xiong", "xin"]),
        ("曾国藩", ["zeng", "guo", "fan"]),
        ("仇英", ["qiu", "ying"]),
        ("区志强", ["ou", "zhi", "qiang"]),
        ("尉迟恭", ["yu", "chi", "gong"]),
        ("欧阳娜娜", ["ou", "yang", "na", "na"]),
        ("张三", ["zhang", "san"]),
        ("简单", ["jian", "dan"]),  # 单 read as a surname only where a surname stands
    ],
)
def test_surnames_are_read_as_surnames(name, syllables):
    assert name_pinyin(list(name)) == syllables


def test_plain_pinyin_reads_each_character_alone():
    assert plain_pinyin(list("单雄信")) == ["dan", "xiong", "xin"]


@pytest.mark.parametrize("written", ["Zhang San", "San Zhang", "ZHANG, San", "zhang  san", "Ｚｈａｎｇ Ｓａｎ"])
def test_latin_names_compare_in_any_order_and_case(written):
    assert latin_name_key(written) == "san zhang"


def test_chinese_punctuation_is_kept_as_typed_and_folded_only_for_matching():
    registered = "腾讯科技（深圳）有限公司"
    assert clean_text(registered) == registered
    assert clean_text("ＶＩＰ客户：１３８　号！") == "VIP客户：138 号！"
    assert clean_paragraphs("你好，世界！\r\n明天回访？") == "你好，世界！\n明天回访？"
    assert fold(registered) == fold("腾讯科技(深圳)有限公司") == "腾讯科技(深圳)有限公司"


texts = st.text(max_size=40)


@given(texts)
def test_clean_text_name_and_fold_are_idempotent(text):
    assert clean_text(clean_text(text)) == clean_text(text)
    assert normalize_name(normalize_name(text)) == normalize_name(text)
    assert fold(fold(text)) == fold(text)
    assert latin_name_key(latin_name_key(text)) == latin_name_key(text)


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_phone_normalisation_is_idempotent_and_shape_blind(national):
    try:
        e164 = normalize_phone(national)
    except ValidationError:
        return
    assert normalize_phone(e164) == e164
    spaced = f"+86 {national[:3]} {national[3:7]} {national[7:]}"
    assert normalize_phone(spaced) == e164


@given(st.emails())
def test_email_normalisation_is_idempotent(address):
    try:
        normal = normalize_email(address)
    except ValidationError:
        return
    assert normalize_email(normal) == normal
    assert normalize_email(normal.upper()) == normal


@given(st.dates(min_value=date(1900, 1, 1), max_value=date.today()))
def test_every_written_form_of_a_birthday_gives_the_same_date(day):
    forms = [day.isoformat(), f"{day.year}/{day.month}/{day.day}", f"{day.year}年{day.month}月{day.day}日"]
    assert {parse_birthday(f) for f in forms} == {day}
    assert parse_birthday(parse_birthday(forms[0]).isoformat()) == day
