"""One mapped row of an import file → the customer input the services validate, with errors per column.

Spreadsheet values come as people type them: 男/女, 1990年3月15日, "VIP；重点客户", labels instead of codes.
Each is read here into the stored form, or becomes an error naming the column (never repeating the value).
"""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import translation
from django.utils.translation import gettext as _
from pydantic import ValidationError as PydanticError

from cim.customers import choices as c
from cim.customers.models import CustomFieldDefinition
from cim.customers.schemas import CustomerInput
from cim.quality.normalize import DIGITS_LOST, clean_text, excel_lost_digits, fold, parse_birthday
from cim.quality.rules import required_fields

CHOICE_TARGETS = {
    "kind": c.Kind,
    "industry": c.Industry,
    "company_size": c.CompanySize,
    "customer_type": c.CustomerType,
    "source_channel": c.SourceChannel,
    "value_tier": c.ValueTier,
    "region": c.Region,
    "lifecycle_stage": c.LifecycleStage,
    "status": c.Status,
}
TEXT_TARGETS = (
    "display_name",
    "family_name",
    "given_name",
    "alias",
    "english_name",
    "company",
    "job_title",
    "uscc",
    "id_number",
)
PHONE_KINDS = {"phones": c.PhoneType.MOBILE, "phones_work": c.PhoneType.WORK, "phones_home": c.PhoneType.HOME}
EMAIL_KINDS = {"emails": c.EmailType.PERSONAL, "emails_work": c.EmailType.WORK}
ADDRESS_TARGETS = ("address", "province", "city", "district", "postal_code", "country")
# Lists in one cell: "VIP|重点客户", "138…；139…", one per line, Google Contacts' " ::: ". Spaces are not
# separators ("138 1234 5678"). Phones and emails are also split at a slash ("137…/139…"); a tag may hold one.
_LIST_SEPARATORS = re.compile(r"[|;,，；、\n]+|\s*:::\s*")
_CONTACT_SEPARATORS = re.compile(r"[|;,，；、/／\n]+|\s*:::\s*")
_GENDERS = {
    c.Gender.MALE.value: "男 男性 男士 先生 m male man 1",
    c.Gender.FEMALE.value: "女 女性 女士 小姐 f female woman 2 0",
    c.Gender.OTHER.value: "其他 other x",
    c.Gender.UNKNOWN.value: "未知 保密 unknown u",
}
# Excel's serial dates count days from here for every date after 1900-02-28 (it counts a 1900-02-29 that never was).
EXCEL_EPOCH = date(1899, 12, 30)
# A birthday without its year, as members give it for birthday offers and phones keep it: 3月15日, 03-15, --0315.
_MONTH_DAY = re.compile(r"(?:--)?(\d{2})-?(\d{2})|(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
# A cell an exporter neutralised against formula injection ("'+8613812345678") gets its value back.
_NEUTRALISED = re.compile(r"^'(?=[=+\-@\t\r])")


@dataclass
class RowInput:
    """What one row asks for: the customer fields, how to find an existing customer, and what was wrong."""

    data: CustomerInput | None
    external_id: str = ""
    number: str = ""
    owner: str = ""
    team: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)


class Lookups:
    """Per-import tables read once: choice labels in both languages, custom field definitions."""

    def __init__(self) -> None:
        self.choices: dict[str, dict[str, str]] = {}
        for target, choice_class in CHOICE_TARGETS.items():
            table = {}
            for language in ("en", "zh-hans"):
                with translation.override(language):
                    for value, label in choice_class.choices:
                        table.setdefault(fold(str(label)), value)
            for value in choice_class.values:
                table[fold(value)] = value
            self.choices[target] = table
        self.genders = {fold(word): value for value, words in _GENDERS.items() for word in words.split()}
        self.definitions = {d.key: d for d in CustomFieldDefinition.objects.filter(is_active=True)}
        self.required = required_fields()


def _text(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    return _NEUTRALISED.sub("", text) if text.startswith("'") else text


def _items(value: object, separators: re.Pattern = _LIST_SEPARATORS) -> list[str]:
    if isinstance(value, list):
        values = value
    elif not isinstance(value, str):
        values = []
    elif "\n" in value.strip():
        # One per line, as CIM exports lists: a tag or an address may itself hold a `|` or a `,`.
        values = value.split("\n")
    else:
        values = separators.split(value)
    return [t for t in (_text(v) for v in values) if t]


def _month_and_day(text: str) -> str:
    """A birthday without its year as MM-DD, or "" if `text` is not one."""
    match = _MONTH_DAY.fullmatch(text)
    if match is None:
        return ""
    try:
        day = date(2000, int(match[1] or match[3]), int(match[2] or match[4]))  # 2000, so that 02-29 is a day
    except ValueError:
        return ""
    return f"{day:%m-%d}"


def _excel_serial_date(text: str) -> date | None:
    """A date Excel shows as its serial number (32947 for 1990-03-15), as it does once a date cell is formatted as
    General or copied from another system. Only five digits (1927-05-18 on) are read so: shorter numbers are
    more likely something else."""
    if len(text) != 5 or not text.isdigit():
        return None
    day = EXCEL_EPOCH + timedelta(days=int(text))
    return day if day <= date.today() else None


def row_input(record: dict[str, object], mapping: dict[str, str], lookups: Lookups, *, source_channel: str) -> RowInput:
    """The customer input of one row; `mapping` is column → target."""
    fields: dict[str, object] = {}
    errors: list[tuple[str, str]] = []
    phones: list[dict] = []
    emails: list[dict] = []
    tags: list[str] = []
    notes: list[str] = []
    address: dict[str, str] = {}
    custom: dict[str, object] = {}
    found = RowInput(data=None)
    columns_of: dict[str, str] = {}
    for column, target in mapping.items():
        if not target or column not in record:
            continue
        value = record[column]
        columns_of.setdefault(target, column)
        if target in PHONE_KINDS:
            phones += [{"number": n, "kind": PHONE_KINDS[target]} for n in _items(value, _CONTACT_SEPARATORS)]
            continue
        if target in EMAIL_KINDS:
            emails += [{"address": a, "kind": EMAIL_KINDS[target]} for a in _items(value, _CONTACT_SEPARATORS)]
            continue
        if target == "tags":
            tags += _items(value)
            continue
        text = _text(value if not isinstance(value, list) else "\n".join(map(str, value)))
        if not text:
            continue
        if target == "external_id" and excel_lost_digits(text):
            errors.append((column, str(DIGITS_LOST)))
        elif target == "notes":
            notes.append(text)
        elif target in ("external_id", "number", "owner", "team"):
            setattr(found, target, clean_text(text))
        elif target in TEXT_TARGETS:
            fields[target] = text
        elif target in CHOICE_TARGETS:
            choice = lookups.choices[target].get(fold(text))
            if choice is None:
                labels = ", ".join(str(label) for value, label in CHOICE_TARGETS[target].choices if value)
                errors.append((column, _("Use one of: %(choices)s.") % {"choices": labels}))
            else:
                fields[target] = choice
        elif target == "gender":
            gender = lookups.genders.get(fold(text))
            if gender is None:
                errors.append((column, _("Enter male/female (男/女).")))
            else:
                fields["gender"] = gender
        elif target == "birthday":
            birthday = parse_birthday(text) or _excel_serial_date(text)
            if birthday is not None:
                fields["birthday"] = birthday
            elif month_day := _month_and_day(text):
                # The birthday field holds whole dates: without its year the day is kept where people read it.
                notes.append(_("Birthday (year not given): %(day)s") % {"day": month_day})
            else:
                errors.append((column, _("Enter a date like 1990-03-15 or 1990年3月15日.")))
        elif target in ADDRESS_TARGETS:
            address[target] = text
        elif target.startswith("cf."):
            key = target[3:]
            definition = lookups.definitions.get(key)
            multi = definition is not None and definition.field_type == c.CustomFieldType.MULTI_CHOICE
            custom[key] = _items(text) if multi else text
    if notes:
        fields["notes"] = "\n".join(notes)
    if "source_channel" not in fields and source_channel:
        fields["source_channel"] = source_channel
    if address:
        country = address.pop("country", "")
        street = address.pop("address", "")
        fields["addresses"] = [{"country": country.upper() if len(country) == 2 else "CN", "street": street, **address}]
    if phones:
        fields["phones"] = phones
    if emails:
        fields["emails"] = emails
    if tags:
        fields["tags"] = list(dict.fromkeys(tags))
    if custom:
        fields["custom_fields"] = custom
    try:
        found.data = CustomerInput(**fields)
    except PydanticError as error:
        for problem in error.errors():
            target = str(problem["loc"][0]) if problem["loc"] else ""
            errors.append((columns_of.get(target, target), _("The value is too long or not allowed here.")))
    found.errors = errors
    return found
