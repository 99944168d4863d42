"""What the imports of a customer's history (orders, interactions) share: the columns that find each row's customer
(by customer number, external id, phone or email, never creating one), times as shops and call centres write
them, and how headers map to fields."""

import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.core.blind_index import blind_index
from cim.core.bulk import column_lookup
from cim.customers.models import Customer, Email, ExternalId, Phone
from cim.customers.numbering import normalize_number
from cim.ingest.mapping import IGNORE, fold_header, header_target
from cim.quality.normalize import normalize_email, normalize_phone

# target → (label, headers that mean it, compared folded like customer headers).
CUSTOMER_KEY_TARGETS: dict[str, tuple] = {
    "customer_number": (gettext_lazy("Customer number"), "客户号 客户编号 customernumber customerno"),
    "external_id": (
        gettext_lazy("Customer's external id"),
        "会员号 会员编号 会员id 客户id 外部编号 用户id 买家会员名 买家账号 买家id "
        "externalid customerid memberid userid uid buyerid",
    ),
    "phone": (
        gettext_lazy("Customer's phone"),
        "手机 手机号 手机号码 电话 联系电话 联系手机 客户电话 客户手机 客户号码 "
        "收货人电话 收货人手机 收货人手机号 mobile phone tel",
    ),
    "email": (gettext_lazy("Customer's email"), "邮箱 电子邮箱 email mail"),
}
CUSTOMER_KEYS = tuple(CUSTOMER_KEY_TARGETS)
_DATETIME = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(?:\.\d+)?秒?)?)?$"
)


def history_auto_map(targets: dict[str, tuple], columns: list[str]) -> dict[str, str]:
    """A target for each column whose header names one of `targets` ("" for the rest); each target once."""
    synonyms = {fold_header(target): target for target in targets}
    for target, (_label, headers) in targets.items():
        for header in headers.split():
            synonyms.setdefault(fold_header(header), target)
    mapping, taken = {}, set()
    for column in columns:
        target = header_target(synonyms, column)
        mapping[column] = IGNORE if target in taken else target
        taken.add(target)
    return mapping


def history_mapping_errors(targets: dict[str, tuple], mapping: dict[str, str], columns: list[str]) -> list[str]:
    """Unknown columns and fields, fields mapped twice, and no column that finds the customer."""
    problems, used = [], {}
    for column, target in mapping.items():
        if column not in columns:
            problems.append(_("The mapping names a column the file does not have: %(c)s") % {"c": column})
        elif target and target not in targets:
            problems.append(_("Column “%(c)s” is mapped to an unknown field “%(t)s”.") % {"c": column, "t": target})
        elif target and target in used:
            problems.append(
                _("Columns “%(a)s” and “%(b)s” are both mapped to “%(t)s”.")
                % {"a": used[target], "b": column, "t": target}
            )
        used.setdefault(target, column)
    if not set(mapping.values()) & set(CUSTOMER_KEYS):
        problems.append(_("Map a column that finds the customer: customer number, external id, phone or email."))
    return problems


def parse_time(text: str) -> datetime | None:
    """A time as shops and call centres export it (2024-05-01 13:05:09, 2024/5/1 13:05, 2024年5月1日), in the
    installation's zone unless it says its own."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        match = _DATETIME.match(text)
        if match is None:
            return None
        try:
            moment = datetime(*(int(part or 0) for part in match.groups()))
        except ValueError:
            return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


def customer_keys(text: dict[str, str], column: dict[str, str], errors: list) -> tuple:
    """(customer number, external id, phone match key, email match key) of a row's texts by target; a phone or
    email that is not one adds (column, message) to `errors`."""
    phone_key = email_key = ""
    if text.get("phone"):
        try:
            phone_key = blind_index("phone", normalize_phone(text["phone"]))
        except ValidationError as error:
            errors.append((column["phone"], error.messages[0]))
    if text.get("email"):
        try:
            email_key = blind_index("email", normalize_email(text["email"]))
        except ValidationError as error:
            errors.append((column["email"], error.messages[0]))
    keys = (normalize_number(text.get("customer_number", "")), text.get("external_id", ""), phone_key, email_key)
    if not any(keys) and not errors:
        errors.append(("", _("Nothing on this row finds its customer (number, external id, phone or email).")))
    return keys


def customers_found(keys_of_rows: list[tuple], system: str) -> list[dict]:
    """For each kind of customer key, which customer holds each key of these rows (a merged customer leads to its
    survivor); `system` is the one external ids belong to."""
    wanted = [sorted({keys[kind] for keys in keys_of_rows} - {""}) for kind in range(len(CUSTOMER_KEYS))]
    found = [
        dict(column_lookup(Customer, "number", "id", wanted[0])),
        dict(column_lookup(ExternalId, "value", "customer", wanted[1], system=system)),
        dict(column_lookup(Phone, "match_key", "customer", wanted[2])),
        dict(column_lookup(Email, "match_key", "customer", wanted[3])),
    ]
    ids = sorted({cid for by_key in found for cid in by_key.values()})
    survivor = {cid: into for cid, into in column_lookup(Customer, "id", "merged_into", ids) if into}
    return [{key: survivor.get(cid, cid) for key, cid in by_key.items()} for by_key in found]


def customer_of(found: list[dict], keys: tuple) -> int | None:
    """The customer the first of a row's keys finds, in the order customer number, external id, phone, email."""
    for found_by_key, key in zip(found, keys, strict=True):
        if key and (customer_id := found_by_key.get(key)):
            return customer_id
    return None
