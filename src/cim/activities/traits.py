"""Segment's reserved identify traits, mapped onto customer fields. Other traits stay on the event only.

Mapped: name, firstName/lastName, email, phone, company (text or {name}), title, birthday, gender and
address {street, city, state, postalCode, country}. A trait of the wrong shape is reported, not guessed at.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from cim.customers.choices import Gender
from cim.quality.normalize import normalize_email, normalize_phone

_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
GENDERS = {
    Gender.MALE: {"male", "m", "man", "男", "男性"},
    Gender.FEMALE: {"female", "f", "woman", "女", "女性"},
    Gender.OTHER: {"other", "non-binary", "nonbinary", "其他"},
}
CHINA = {"cn", "chn", "china", "prc", "中国", "中华人民共和国"}
ADDRESS_PARTS = {"street": "street", "city": "city", "state": "province", "district": "district"}


@dataclass
class Traits:
    """What an identify says about a customer: CustomerInput fields, plus the contact points it names."""

    fields: dict[str, Any] = field(default_factory=dict)
    email: str = ""  # as sent
    email_normalized: str = ""
    phone: str = ""
    phone_e164: str = ""
    address: dict[str, str] | None = None
    errors: list[dict] = field(default_factory=list)

    def reject(self, trait: str, message: str, code: str = "invalid") -> None:
        self.errors.append({"field": f"traits.{trait}", "code": code, "message": message})

    @property
    def empty(self) -> bool:
        return not (self.fields or self.email or self.phone or self.address)


def _text(traits: Traits, raw: dict, name: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        traits.reject(name, _("Enter text."))
        return ""
    return str(value).strip()


def _display_name(first: str, last: str) -> str:
    """Chinese names are written family name first, without a space (张 + 三); others first name first."""
    if _CJK.search(first + last):
        return last + first
    return f"{first} {last}".strip()


def _address(traits: Traits, raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        traits.reject("address", _("Enter an object."))
        return None
    address = {}
    for trait, part in (*ADDRESS_PARTS.items(), ("postalCode", "postal_code")):
        value = raw.get(trait)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            address[part] = str(value).strip()
    country = str(raw.get("country") or "").strip()
    if country.lower() in CHINA:
        address["country"] = "CN"
    elif re.fullmatch("[A-Za-z]{2}", country):
        address["country"] = country.upper()
    elif country:
        traits.reject("address.country", _("Enter the country as a two-letter ISO code."))
        return None
    return address if any(address.get(p) for p in ADDRESS_PARTS.values()) else None


def traits_parse(raw: dict[str, Any]) -> Traits:
    """The customer data in an identify's traits; wrong values land in `errors`, named by trait."""
    traits = Traits()
    if name := _text(traits, raw, "name"):
        traits.fields["display_name"] = name
    first = _text(traits, raw, "firstName") or _text(traits, raw, "first_name")
    last = _text(traits, raw, "lastName") or _text(traits, raw, "last_name")
    if first:
        traits.fields["given_name"] = first
    if last:
        traits.fields["family_name"] = last
    if (first or last) and not name:
        traits.fields["display_name"] = _display_name(first, last)
    company = raw.get("company")
    if isinstance(company, dict):
        company = company.get("name")
    if company not in (None, ""):
        if isinstance(company, str):
            traits.fields["company"] = company.strip()
        else:
            traits.reject("company", _("Enter the company name as text, or as an object with a name."))
    if title := _text(traits, raw, "title"):
        traits.fields["job_title"] = title
    birthday = raw.get("birthday")
    if birthday not in (None, ""):
        # ISO dates, or the ISO timestamps analytics.js sends for Date objects.
        traits.fields["birthday"] = birthday[:10] if isinstance(birthday, str) else birthday
    if gender := _text(traits, raw, "gender"):
        value = next((g for g, words in GENDERS.items() if gender.lower() in words), None)
        if value is None:
            traits.reject("gender", _("Enter male, female or other."))
        else:
            traits.fields["gender"] = value
    if email := _text(traits, raw, "email"):
        try:
            traits.email_normalized, traits.email = normalize_email(email), email
        except ValidationError as error:
            traits.reject("email", error.messages[0])
    if phone := _text(traits, raw, "phone"):
        try:
            traits.phone_e164, traits.phone = normalize_phone(phone), phone
        except ValidationError as error:
            traits.reject("phone", error.messages[0])
    if raw.get("address") not in (None, "", {}):
        traits.address = _address(traits, raw["address"])
    return traits


# Traits that carry sensitive values (PI registry): they reach the customer's encrypted fields, and are cut from
# the event as stored, so no phone, email, street, birthday or ID number lies in plaintext among the events.
SENSITIVE_TRAITS = frozenset({"email", "phone", "address", "birthday", "idNumber", "id_number"})


def sensitive_traits_removed(values: dict[str, Any]) -> dict[str, Any]:
    """`values` (traits, properties or context) without the sensitive traits, also those nested in `traits`."""
    kept = {key: value for key, value in values.items() if key not in SENSITIVE_TRAITS}
    if isinstance(kept.get("traits"), dict):
        kept["traits"] = sensitive_traits_removed(kept["traits"])
    return kept


# Where a CustomerInput field came from, to name the trait in an error the customer service reports.
TRAIT_OF_FIELD = {
    "display_name": "name",
    "given_name": "firstName",
    "family_name": "lastName",
    "company": "company",
    "job_title": "title",
    "birthday": "birthday",
    "gender": "gender",
    "emails": "email",
    "phones": "phone",
    "addresses": "address",
}
