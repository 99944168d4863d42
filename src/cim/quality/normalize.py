"""Normalisation on the way in (DESIGN §5): each rule takes what a person typed and returns the stored form.

Error messages never repeat the value: it may be personal, and they reach logs and import reports.

Each raises `django.core.exceptions.ValidationError` with a translated message when the value cannot be used.
Per-row library calls dominate bulk paths, so the expensive rules are cached by value.
"""

import re
import unicodedata
from datetime import date
from functools import lru_cache

import opencc
import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

_SPACES = re.compile(r"\s+")
# Control characters, lone surrogates and noncharacters: never meant, and refused by PostgreSQL (NUL) or UTF-8
# (surrogates); the noncharacters stand in for Chinese punctuation below.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef]")
# Chinese punctuation that NFKC would turn half-width. Stored text keeps it as typed: a company's registered name
# is written with （）, and 你好，世界！ with a half-width comma is a typo. Matching (`fold`) still folds it.
_CHINESE_PUNCTUATION = "，！？：；（）～"
_PUNCTUATION_KEPT = str.maketrans({c: chr(0xFDD0 + i) for i, c in enumerate(_CHINESE_PUNCTUATION)})
_PUNCTUATION_BACK = str.maketrans({chr(0xFDD0 + i): c for i, c in enumerate(_CHINESE_PUNCTUATION)})
_t2s = opencc.OpenCC("t2s")


def _nfkc(text: str) -> str:
    """NFKC, but for the Chinese punctuation above, and without what cannot be stored."""
    kept = _UNSTORABLE.sub("", text).translate(_PUNCTUATION_KEPT)
    return unicodedata.normalize("NFKC", kept).translate(_PUNCTUATION_BACK)


def clean_text(raw: str | None) -> str:
    """NFKC (folds full-width letters, digits and Latin punctuation to half-width; keeps Chinese punctuation),
    spacing collapsed, controls dropped."""
    if not raw:
        return ""
    if raw.isascii() and raw.isprintable():
        # Most of an import (phones, emails, ids): nothing to fold or drop, and its only whitespace is " ".
        return " ".join(raw.split())
    return _SPACES.sub(" ", _nfkc(raw)).strip()


def clean_paragraphs(raw: str | None) -> str:
    """Like `clean_text` for notes: line breaks are kept, trailing spaces and control characters dropped."""
    if not raw:
        return ""
    text = _nfkc(raw).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def normalize_name(raw: str | None) -> str:
    """A name as stored for display: NFKC, half-width, single spaces. Script (简/繁) is kept as entered."""
    return clean_text(raw)


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """The matching form of a text: NFKC, traditional → simplified, lower case, single spaces."""
    return _t2s.convert(unicodedata.normalize("NFKC", clean_text(text))).lower()


@lru_cache(maxsize=200_000)
def _parse_phone(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_PHONE_PUNCTUATION = re.compile(r"[\s\-().\u00b7]")
# Bulk imports are mostly Chinese mobiles: matched against phonenumbers' own pattern for them they skip the
# parser (47 µs a number), with exactly the library's answer.
_CN_MOBILE = re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)
_CN_MOBILE_SHAPE = re.compile(r"^(?:\+?86)?(1\d{10})$")


# What Excel writes into a CSV for a long number in a General column, its last digits gone: 1.38123E+10.
_SCIENTIFIC = re.compile(r"[+-]?\d+(\.\d+)?[eE]\+?\d+")
DIGITS_LOST = _(
    "Excel saved this number in scientific notation, which loses its last digits: format the column as Text "
    "in Excel and save the file again."
)


def excel_lost_digits(text: str) -> bool:
    return bool(_SCIENTIFIC.fullmatch(text))


def normalize_phone(raw: str | None, region: str | None = None) -> str:
    """A phone number in E.164 (`+8613812345678`) from the shapes people write: +86, 0086, (+86), 86-, spaces."""
    text = clean_text(raw)
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    if excel_lost_digits(text):
        raise ValidationError(DIGITS_LOST, code="digits_lost")
    compact = _PHONE_PUNCTUATION.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    region = region or settings.CIM_PHONE_REGION
    shape = _CN_MOBILE_SHAPE.match(compact)
    if shape and (region == "CN" or compact.startswith("+")) and _CN_MOBILE.fullmatch(shape[1]):
        return "+86" + shape[1]
    e164 = _parse_phone(compact, region)
    # "8613812345678" without a plus is how some exports write Chinese mobiles.
    if e164 is None and compact.startswith("86") and len(compact) == 13:
        e164 = _parse_phone("+" + compact, region)
    if e164 is None:
        raise ValidationError(_("This is not a valid phone number."), code="invalid_phone")
    return e164


def normalize_email(raw: str | None) -> str:
    """An email address trimmed, NFKC-folded (full-width ＠) and lower-cased."""
    text = clean_text(raw).lower()
    if not text:
        raise ValidationError(_("Enter an email address."), code="required")
    try:
        # RFC 5321 caps a path at 254 characters; Django's validator allows 320, more than Email.address holds.
        if len(text) > 254:
            raise ValidationError("too long")
        validate_email(text)
    except ValidationError:
        raise ValidationError(_("This is not a valid email address."), code="invalid_email") from None
    return text


def normalize_uscc(raw: str | None) -> str:
    """A unified social credit code (统一社会信用代码), checked digit included."""
    text = clean_text(raw).upper().replace(" ", "")
    try:
        return uscc.validate(text)
    except StdnumError:
        raise ValidationError(_("This is not a valid unified social credit code."), code="invalid_uscc") from None


def normalize_id_number(raw: str | None) -> str:
    """A resident identity card number (居民身份证号码), 18 characters with a checked last digit (X upper-case)."""
    text = clean_text(raw).upper().replace(" ", "")
    if excel_lost_digits(text):
        raise ValidationError(DIGITS_LOST, code="digits_lost")
    try:
        return ric.validate(text)
    except StdnumError:
        raise ValidationError(
            _("This is not a valid resident identity card number."), code="invalid_id_number"
        ) from None


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
EARLIEST_BIRTHDAY = date(1900, 1, 1)


@lru_cache(maxsize=50_000)
def parse_birthday(text: str) -> date | None:
    """A birthday as Chinese and ISO spreadsheets write it: 1990-03-15, 1990/3/15, 1990.3.15, 1990年3月15日,
    19900315, or a datetime cell (1990-03-15 00:00:00). Day-first and month-first forms (03/15/1990) are refused:
    they cannot be told apart. So are dates before 1900 or in the future."""
    text = clean_text(text)
    if " " in text and ":" in text:
        text = text.split(" ", 1)[0]
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match is None:
        return None
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return day if EARLIEST_BIRTHDAY <= day <= date.today() else None


@lru_cache(maxsize=20_000)
def split_address(text: str) -> dict[str, str]:
    """A Chinese address split into province, city and district (with the district's adcode, or the city's when
    no district is named) and the rest (`street`), by cpca: "广东深圳南山区科技园" → 广东省, 深圳市, 南山区,
    科技园, 440305. Parts it does not recognise are empty."""
    import cpca  # loads its tables (a second) on first use

    text = clean_text(text)
    row = cpca.transform([text]).iloc[0]
    parts = {
        "province": row["省"],
        "city": row["市"],
        "district": row["区"],
        "street": row["地址"],
        "adcode": row["adcode"],
    }
    parts = {name: value.strip() if isinstance(value, str) else "" for name, value in parts.items()}
    if parts["city"] == "市辖区":  # cpca's name for the districts of a municipality (北京, 上海…)
        parts["city"] = parts["province"]
    if not (parts["province"] or parts["city"] or parts["district"]):
        parts["street"] = text
    return parts
