"""The segment rule language: a tree of AND/OR groups, each optionally negated, over conditions on any customer
field, tag, custom field, order aggregate, product bought, event, analytics score or other segment.

    {"match": "all" | "any", "negate": false, "rules": [
        {"field": "total_spent", "operator": "gte", "value": 1000},
        {"match": "any", "negate": true, "rules": [...]},
    ]}

An empty group places no condition: it is left out of its parent, so a segment whose rules are empty holds every
current customer. Order aggregates and scores are read from the customer's analytics scores (refreshed in the
background); a customer without scores yet counts as having no orders and spending 0.

`rules_validate` checks a tree and returns it normalised (values coerced), raising one ValidationError that names
each bad condition by its position ("2.1" is the first condition of the second item); `rules_condition` turns a
valid tree into one `Q` over customers.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from cim.accounts.models import Team, User
from cim.activities.models import BehaviourEvent, Order, OrderLine
from cim.analytics.rfm import RF_SEGMENTS, VALUE_SEGMENTS
from cim.core.blind_index import blind_index
from cim.customers import choices as c
from cim.customers.birthdays import birthday_between_q
from cim.customers.models import Address, CustomerTag, CustomFieldDefinition, Email, Phone
from cim.quality.normalize import clean_text, normalize_email, normalize_phone

MAX_DEPTH = 5
MAX_CONDITIONS = 50
COUNTED_ORDERS = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)

OPERATORS: dict[str, tuple[str, ...]] = {
    "choice": ("eq", "ne", "in", "not_in", "is_empty", "is_set"),
    "text": ("eq", "ne", "contains", "not_contains", "starts_with", "is_empty", "is_set"),
    # Encrypted values, matched through their keyed hashes: whole values only (docs/encryption.md).
    "contact": ("eq", "ne", "is_empty", "is_set"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_empty", "is_set"),
    "date": ("on", "before", "after", "between", "within_last_days", "more_than_days_ago", "is_empty", "is_set"),
    "bool": ("is_true", "is_false"),
    "tag": ("has_any", "has_all", "has_none"),
    "product": ("bought_any", "bought_none"),
    "event": ("performed", "not_performed"),
    "segment": ("in", "not_in"),
}
OPERATOR_LABELS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "starts_with": gettext_lazy("starts with"),
    "is_empty": gettext_lazy("is empty"),
    "is_set": gettext_lazy("is set"),
    "gt": gettext_lazy("greater than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "between": gettext_lazy("between"),
    "on": gettext_lazy("on"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "within_last_days": gettext_lazy("in the last N days"),
    "more_than_days_ago": gettext_lazy("more than N days ago"),
    "is_true": gettext_lazy("yes"),
    "is_false": gettext_lazy("no"),
    "has_any": gettext_lazy("has any of"),
    "has_all": gettext_lazy("has all of"),
    "has_none": gettext_lazy("has none of"),
    "bought_any": gettext_lazy("bought any of"),
    "bought_none": gettext_lazy("bought none of"),
    "performed": gettext_lazy("did, in the last N days"),
    "not_performed": gettext_lazy("did not, in the last N days"),
}
# A negative operator on a related row is the absence of a row meeting the positive one.
NEGATIONS = {"ne": "eq", "not_in": "in", "not_contains": "contains", "is_empty": "is_set"}


@dataclass(frozen=True)
class Field:
    key: str
    label: object
    type: str
    group: object
    lookup: str = ""
    choices: Callable[[], list[tuple[str, str]]] | None = None
    # A row of another model the condition looks for: (model, its column pointing at the customer).
    related: tuple[type, str] | None = None
    # The value a customer without a score row has (no orders: 0), when that value meets the condition.
    default: object = None
    datetime: bool = False


def _choices(enum) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [(value, str(label)) for value, label in enum.choices]


def _owners() -> list[tuple[str, str]]:
    return [(str(u.pk), str(u)) for u in User.objects.filter(is_active=True).order_by("username")]


def _teams() -> list[tuple[str, str]]:
    return [(str(t.pk), str(t)) for t in Team.objects.order_by("name")]


def _rfm_segments() -> list[tuple[str, str]]:
    return [(key, str(label)) for _rx, key, label in RF_SEGMENTS]


def _value_segments() -> list[tuple[str, str]]:
    return [(key, str(label)) for key, label in VALUE_SEGMENTS.values()]


CUSTOMER = gettext_lazy("Customer")
CONTACT = gettext_lazy("Contact")
ORDERS = gettext_lazy("Orders")
BEHAVIOUR = gettext_lazy("Tags, events and segments")
ANALYTICS = gettext_lazy("Analytics")
CUSTOM = gettext_lazy("Custom fields")

FIELDS: dict[str, Field] = {
    f.key: f
    for f in (
        Field("kind", gettext_lazy("Kind"), "choice", CUSTOMER, "kind", _choices(c.Kind)),
        Field("display_name", gettext_lazy("Name"), "text", CUSTOMER, "display_name"),
        Field("company", gettext_lazy("Company"), "text", CUSTOMER, "company"),
        Field("gender", gettext_lazy("Gender"), "choice", CUSTOMER, "gender", _choices(c.Gender)),
        Field("birthday", gettext_lazy("Birthday"), "date", CUSTOMER, "birthday"),
        # The birthday is encrypted; its year and month are kept in plaintext for these (docs/encryption.md).
        Field("birthday_month", gettext_lazy("Birthday month"), "number", CUSTOMER, "birth_month"),
        Field("birth_year", gettext_lazy("Year of birth"), "number", CUSTOMER, "birth_year"),
        Field(
            "customer_type",
            gettext_lazy("Customer type"),
            "choice",
            CUSTOMER,
            "customer_type",
            _choices(c.CustomerType),
        ),
        Field(
            "source_channel",
            gettext_lazy("Source channel"),
            "choice",
            CUSTOMER,
            "source_channel",
            _choices(c.SourceChannel),
        ),
        Field("value_tier", gettext_lazy("Value tier"), "choice", CUSTOMER, "value_tier", _choices(c.ValueTier)),
        Field("region", gettext_lazy("Region"), "choice", CUSTOMER, "region", _choices(c.Region)),
        Field("industry", gettext_lazy("Industry"), "choice", CUSTOMER, "industry", _choices(c.Industry)),
        Field(
            "lifecycle_stage",
            gettext_lazy("Lifecycle stage"),
            "choice",
            CUSTOMER,
            "lifecycle_stage",
            _choices(c.LifecycleStage),
        ),
        Field("owner", gettext_lazy("Owner"), "choice", CUSTOMER, "owner_id", _owners),
        Field("team", gettext_lazy("Team"), "choice", CUSTOMER, "team_id", _teams),
        Field("created_at", gettext_lazy("Created"), "date", CUSTOMER, "created_at", datetime=True),
        Field("reviewed_at", gettext_lazy("Last reviewed"), "date", CUSTOMER, "reviewed_at", datetime=True),
        Field("phone", gettext_lazy("Phone number"), "contact", CONTACT, "number", related=(Phone, "customer")),
        Field("email", gettext_lazy("E-mail address"), "contact", CONTACT, "address", related=(Email, "customer")),
        Field("province", gettext_lazy("Province"), "text", CONTACT, "province", related=(Address, "customer")),
        Field("city", gettext_lazy("City"), "text", CONTACT, "city", related=(Address, "customer")),
        Field("district", gettext_lazy("District"), "text", CONTACT, "district", related=(Address, "customer")),
        Field("orders", gettext_lazy("Number of orders"), "number", ORDERS, "score__orders", default=0),
        Field("total_spent", gettext_lazy("Total spent"), "number", ORDERS, "score__total_spent", default=0),
        Field("first_order_at", gettext_lazy("First order"), "date", ORDERS, "score__first_order_at", datetime=True),
        Field("last_order_at", gettext_lazy("Last order"), "date", ORDERS, "score__last_order_at", datetime=True),
        Field("product", gettext_lazy("Product bought (SKU)"), "product", ORDERS),
        Field("tag", gettext_lazy("Tags"), "tag", BEHAVIOUR),
        Field("event", gettext_lazy("Event"), "event", BEHAVIOUR),
        Field("segment", gettext_lazy("Member of segment"), "segment", BEHAVIOUR),
        Field("rfm_segment", gettext_lazy("RFM segment"), "choice", ANALYTICS, "score__rfm_segment", _rfm_segments),
        Field(
            "value_segment",
            gettext_lazy("RFM value segment"),
            "choice",
            ANALYTICS,
            "score__value_segment",
            _value_segments,
        ),
        Field("recency_score", gettext_lazy("R score (1–5)"), "number", ANALYTICS, "score__recency_score"),
        Field("frequency_score", gettext_lazy("F score (1–5)"), "number", ANALYTICS, "score__frequency_score"),
        Field("monetary_score", gettext_lazy("M score (1–5)"), "number", ANALYTICS, "score__monetary_score"),
        Field("clv", gettext_lazy("Lifetime value, next year"), "number", ANALYTICS, "score__clv"),
        Field("p_alive", gettext_lazy("Probability still active (0–1)"), "number", ANALYTICS, "score__p_alive"),
        Field("churn_risk", gettext_lazy("Churn risk (0–1)"), "number", ANALYTICS, "score__churn_risk"),
        Field("cluster", gettext_lazy("Cluster"), "number", ANALYTICS, "score__cluster"),
        Field(
            "stage_since",
            gettext_lazy("In lifecycle stage since"),
            "date",
            ANALYTICS,
            "score__stage_since",
            datetime=True,
        ),
    )
}
CUSTOM_TYPES = {
    c.CustomFieldType.TEXT: "text",
    c.CustomFieldType.NUMBER: "number",
    c.CustomFieldType.DATE: "date",
    c.CustomFieldType.CHOICE: "choice",
    c.CustomFieldType.MULTI_CHOICE: "multi_choice",
}


def field_catalogue() -> dict[str, Field]:
    """Every field a rule can name: the built-in ones and the active custom fields (`cf.<key>`)."""
    fields = dict(FIELDS)
    for definition in CustomFieldDefinition.objects.filter(is_active=True):
        options = [(str(o), str(o)) for o in definition.choices or []]
        kind = CUSTOM_TYPES[definition.field_type]
        fields[f"cf.{definition.key}"] = Field(
            f"cf.{definition.key}",
            definition.label(get_language() or "en"),
            "choice" if kind == "multi_choice" else kind,
            CUSTOM,
            f"custom_fields__{definition.key}",
            (lambda options=options: options) if options else None,
            default="multi" if kind == "multi_choice" else None,
        )
    return fields


# ---------------------------------------------------------------------------------------------------- validation


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(_("Condition %(position)s: %(problem)s") % {"position": path, "problem": message})


def rules_validate(tree, *, fields: dict[str, Field] | None = None, segment_id: int | None = None) -> dict:
    """The tree normalised, or a ValidationError on `rules` listing every bad condition by position.
    `segment_id` is the segment being edited: it may not refer to itself."""
    fields = fields if fields is not None else field_catalogue()
    problems = _Problems()
    if tree in (None, "", {}):
        return {"match": "all", "negate": False, "rules": []}
    if not isinstance(tree, dict):
        raise ValidationError({"rules": [_("The rules must be a group: an object with match and rules.")]})
    count = [0]
    result = _group(tree, "", 1, fields, problems, count, segment_id)
    if count[0] > MAX_CONDITIONS:
        problems.messages.append(_("At most %(n)s conditions.") % {"n": MAX_CONDITIONS})
    if problems.messages:
        raise ValidationError({"rules": problems.messages})
    return result


def _group(node: dict, path: str, depth: int, fields, problems: _Problems, count: list[int], segment_id) -> dict:
    match = node.get("match", "all")
    if match not in ("all", "any"):
        problems.add(path or "0", _("a group matches all or any of its conditions."))
    if depth > MAX_DEPTH:
        problems.add(path or "0", _("groups nest at most %(n)s deep.") % {"n": MAX_DEPTH})
        return {"match": "all", "negate": False, "rules": []}
    children = node.get("rules", [])
    if not isinstance(children, list):
        problems.add(path or "0", _("a group's rules are a list."))
        children = []
    rules = []
    for index, child in enumerate(children, start=1):
        where = f"{path}.{index}" if path else str(index)
        if not isinstance(child, dict):
            problems.add(where, _("not a condition or a group."))
        elif "rules" in child or "match" in child:
            rules.append(_group(child, where, depth + 1, fields, problems, count, segment_id))
        else:
            count[0] += 1
            rules.append(_condition(child, where, fields, problems, segment_id))
    return {"match": match, "negate": bool(node.get("negate", False)), "rules": rules}


def _condition(node: dict, path: str, fields, problems: _Problems, segment_id) -> dict:
    key, operator, value = node.get("field"), node.get("operator"), node.get("value")
    field = fields.get(key) if isinstance(key, str) else None
    if field is None:
        problems.add(path, _("unknown field “%(field)s”.") % {"field": str(key)[:50]})
        return dict(node)
    if operator not in OPERATORS[field.type]:
        problems.add(
            path, _("“%(operator)s” does not apply to %(field)s.") % {"operator": operator, "field": field.label}
        )
        return dict(node)
    result = {"field": key, "operator": operator}
    try:
        if field.type == "event":
            result["value"] = _text(value)
            result["days"] = _days(node.get("days", 30))
        elif operator not in ("is_empty", "is_set", "is_true", "is_false"):
            result["value"] = _value(field, operator, value, segment_id)
    except ValueError as error:
        problems.add(path, f"{field.label}: {error}")
    return result


def _value(field: Field, operator: str, value, segment_id):
    if operator in ("within_last_days", "more_than_days_ago"):
        return _days(value)
    if field.type == "segment":
        return _segment(value, segment_id)
    if operator in ("in", "not_in", "has_any", "has_all", "has_none", "bought_any", "bought_none"):
        if not isinstance(value, list) or not value or len(value) > 100:
            raise ValueError(_("choose 1 to 100 values."))
        return [_scalar(field, item) for item in value]
    if operator == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(_("give two values, the lower first."))
        low, high = (_scalar(field, item) for item in value)
        if low > high:
            raise ValueError(_("give two values, the lower first."))
        return [low, high]
    return _scalar(field, value)


def _scalar(field: Field, value):
    if field.type == "number":
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(_("“%(value)s” is not a number.") % {"value": str(value)[:30]}) from None
        if not number.is_finite():
            raise ValueError(_("“%(value)s” is not a number.") % {"value": str(value)[:30]})
        return int(number) if number == number.to_integral_value() else float(number)
    if field.type == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError(_("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": str(value)[:30]}) from None
    text = _text(value)
    if field.type == "contact":
        try:
            return normalize_phone(text) if field.key == "phone" else normalize_email(text)
        except ValidationError as error:
            raise ValueError(" ".join(error.messages)) from None
    if field.choices is not None:
        allowed = {key for key, _label in field.choices()}
        if text not in allowed:
            raise ValueError(_("“%(value)s” is not one of the choices.") % {"value": text[:30]})
    return text


def _text(value) -> str:
    text = clean_text(str(value)) if isinstance(value, str | int | float) else ""
    if not text or len(text) > 200:
        raise ValueError(_("give a value of 1 to 200 characters."))
    return text


def _days(value) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= 36500:
        raise ValueError(_("give a number of days from 1 to 36500."))
    return days


def _segment(value, segment_id) -> int:
    from cim.segments.models import Segment

    try:
        pk = int(value)
    except (TypeError, ValueError):
        pk = 0
    if pk == segment_id:
        raise ValueError(_("a segment cannot refer to itself."))
    if not Segment.objects.filter(pk=pk).exists():
        raise ValueError(_("no such segment."))
    return pk


def referenced_segments(tree: dict) -> set[int]:
    """The segments a rule tree names, at any depth."""
    found: set[int] = set()
    for node in tree.get("rules", []):
        if "rules" in node:
            found |= referenced_segments(node)
        elif node.get("field") == "segment":
            found.add(node["value"])
    return found


# --------------------------------------------------------------------------------------------------- compilation


def rules_condition(tree: dict, *, fields: dict[str, Field] | None = None) -> Q:
    """One Q over customers for a validated tree."""
    fields = fields if fields is not None else field_catalogue()
    return _group_q(tree, fields, timezone.now()) or Q()


def _group_q(node: dict, fields, now) -> Q | None:
    parts = [
        part
        for part in (
            _group_q(child, fields, now) if "rules" in child else _condition_q(child, fields, now)
            for child in node["rules"]
        )
        if part is not None
    ]
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if node["match"] == "all" else combined | part
    return ~combined if node.get("negate") else combined


def _condition_q(node: dict, fields, now) -> Q:
    field = fields[node["field"]]
    operator, value = node["operator"], node.get("value")
    if field.type == "tag":
        return _tag_q(operator, value)
    if field.type == "product":
        bought = Exists(
            OrderLine.objects.filter(
                order__customer=OuterRef("pk"),
                order__status__in=COUNTED_ORDERS,
                sku__in=value,
            )
        )
        return Q(bought) if operator == "bought_any" else ~Q(bought)
    if field.type == "event":
        since = now - timedelta(days=node["days"])
        done = Exists(BehaviourEvent.objects.filter(customer=OuterRef("pk"), name=value, occurred_at__gte=since))
        return Q(done) if operator == "performed" else ~Q(done)
    if field.type == "segment":
        from cim.segments.models import SegmentMember

        member = Exists(SegmentMember.objects.filter(segment_id=value, customer=OuterRef("pk")))
        return Q(member) if operator == "in" else ~Q(member)
    if field.related:
        model, column = field.related
        positive = NEGATIONS.get(operator, operator)
        rows = model.objects.filter(_lookup_q(field, positive, value, now), **{column: OuterRef("pk")})
        return ~Q(Exists(rows)) if operator in NEGATIONS else Q(Exists(rows))
    condition = _lookup_q(field, operator, value, now)
    if field.default is not None and field.default != "multi" and _meets(field.default, operator, value):
        condition |= Q(score__isnull=True)
    return condition


def _tag_q(operator: str, names: list[str]) -> Q:
    def tagged(names):
        return Q(Exists(CustomerTag.objects.filter(customer=OuterRef("pk"), tag__name__in=names)))

    if operator == "has_all":
        condition = Q()
        for name in names:
            condition &= tagged([name])
        return condition
    return tagged(names) if operator == "has_any" else ~tagged(names)


def _lookup_q(field: Field, operator: str, value, now) -> Q:
    path = field.lookup
    if field.type == "contact" and operator == "eq":
        return Q(match_key=blind_index(field.key, value))
    if field.default == "multi" and operator in ("eq", "ne", "in", "not_in"):
        # A multiple-choice custom field holds a JSON list: `"value"` appears in its text exactly when chosen.
        values = value if isinstance(value, list) else [value]
        condition = Q()
        for item in values:
            condition |= Q(**{f"{path}__icontains": f'"{item}"'})
        return condition if operator in ("eq", "in") else ~condition
    if field.type == "date":
        return _date_q(field, operator, value, now)
    simple = {
        "eq": "exact",
        "in": "in",
        "contains": "icontains",
        "starts_with": "istartswith",
        "gt": "gt",
        "gte": "gte",
        "lt": "lt",
        "lte": "lte",
        "between": "range",
    }
    if operator in simple:
        return Q(**{f"{path}__{simple[operator]}": value})
    if operator in ("ne", "not_in", "not_contains"):
        return ~_lookup_q(field, NEGATIONS[operator], value, now)
    empty = Q(**{f"{path}__isnull": True})
    if field.type in ("text", "choice"):
        empty |= Q(**{path: ""})
    return empty if operator == "is_empty" else ~empty


def _date_q(field: Field, operator: str, value, now) -> Q:
    path = field.lookup
    if path == "birthday" and operator not in ("is_empty", "is_set"):
        return _birthday_q(operator, value, now)
    if operator == "within_last_days":
        start = now - timedelta(days=value)
        return Q(**{f"{path}__gte": start if field.datetime else start.date()})
    if operator == "more_than_days_ago":
        end = now - timedelta(days=value)
        return Q(**{f"{path}__lt": end if field.datetime else end.date()})
    if operator in ("is_empty", "is_set"):
        return Q(**{f"{path}__isnull": operator == "is_empty"})
    # Calendar days are the business's: compare the local date of a time.
    day_path = f"{path}__date" if field.datetime else path
    lookups = {"on": "exact", "before": "lt", "after": "gt", "between": "range"}
    return Q(**{f"{day_path}__{lookups[operator]}": value})


def _birthday_q(operator: str, value, now) -> Q:
    """A date condition on the encrypted birthday, as a range of days (cim.customers.birthdays)."""
    today = timezone.localdate(now)
    day = date.fromisoformat
    ranges = {
        "on": lambda: (day(value), day(value)),
        "before": lambda: (None, day(value) - timedelta(days=1)),
        "after": lambda: (day(value) + timedelta(days=1), None),
        "between": lambda: (day(value[0]), day(value[1])),
        "within_last_days": lambda: (today - timedelta(days=value), None),
        "more_than_days_ago": lambda: (None, today - timedelta(days=value + 1)),
    }
    return birthday_between_q(*ranges[operator]())


def _meets(default, operator: str, value) -> bool:
    """Whether the value of a customer without scores (0) meets a number condition."""
    checks = {
        "eq": lambda: default == value,
        "ne": lambda: default != value,
        "gt": lambda: default > value,
        "gte": lambda: default >= value,
        "lt": lambda: default < value,
        "lte": lambda: default <= value,
        "between": lambda: value[0] <= default <= value[1],
        "is_set": lambda: True,
    }
    return checks.get(operator, lambda: False)()
