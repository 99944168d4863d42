"""The one filter definition of customers: the list page, exports and the API all read it (DESIGN §3.5)."""

from datetime import date, timedelta
from typing import Literal

from django.db.models import Q, QuerySet
from ninja import Schema
from pydantic import Field

from cim.customers import choices as c
from cim.customers.birthdays import birthday_between_q
from cim.customers.models import CustomerTag, CustomFieldDefinition
from cim.customers.schemas import MAX_ID
from cim.quality.normalize import clean_text
from cim.search.selectors import search_filter
from cim.segments.models import SegmentMember

SORTS = {
    "-created": ("-id",),
    "created": ("id",),
    "-updated": ("-updated_at", "-id"),
    "updated": ("updated_at", "id"),
    "name": ("display_name", "id"),
    "-name": ("-display_name", "-id"),
    "number": ("number",),
    "-number": ("-number",),
}
Sort = Literal["-created", "created", "-updated", "updated", "name", "-name", "number", "-number"]
StatusFilter = Literal["active", "inactive", "archived", "current", "any"]


class CustomerFilter(Schema):
    """Filters of the customer list. `status=current` (the default) is everything not archived."""

    q: str | None = Field(None, max_length=200, description="Keyword: name, pinyin, initials, phone, email, number")
    kind: c.Kind | None = None
    status: StatusFilter = "current"
    customer_type: c.CustomerType | None = None
    source_channel: c.SourceChannel | None = None
    value_tier: c.ValueTier | None = None
    region: c.Region | None = None
    industry: c.Industry | None = None
    lifecycle_stage: c.LifecycleStage | None = None
    gender: c.Gender | None = None
    tag: list[str] = Field(default_factory=list, max_length=10, description="Tag names; all must be present")
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    birthday_from: date | None = None
    birthday_to: date | None = None
    cf: list[str] = Field(default_factory=list, max_length=10, description="Custom field equals a value: `key:value`")
    cluster: int | None = Field(None, ge=1, le=8, description="Customer cluster number (analytics)")
    segment: int | None = Field(None, ge=1, le=MAX_ID, description="Members of this segment or static list (its id)")
    # Applied by customers.selectors.customer_list, which knows the user.
    shared: bool = Field(False, description="Only customers shared with my team")
    sort: Sort = "-created"

    def apply(self, queryset: QuerySet) -> QuerySet:
        condition = Q()
        if self.status == "current":
            condition &= ~Q(status=c.Status.ARCHIVED)
        elif self.status != "any":
            condition &= Q(status=self.status)
        for name in (
            "kind",
            "customer_type",
            "source_channel",
            "value_tier",
            "region",
            "industry",
            "lifecycle_stage",
            "gender",
            "owner_id",
            "team_id",
        ):
            value = getattr(self, name)
            if value is not None:
                condition &= Q(**{name: value})
        # Dates are the user's calendar days; `_to` includes the whole day.
        for name, field in (("created", "created_at"), ("updated", "updated_at")):
            start, end = getattr(self, f"{name}_from"), getattr(self, f"{name}_to")
            if start:
                condition &= Q(**{f"{field}__date__gte": start})
            if end:
                condition &= Q(**{f"{field}__date__lt": end + timedelta(days=1)})
        if self.birthday_from or self.birthday_to:
            # Encrypted: the database compares the plaintext year and month, the edge months are decrypted here.
            condition &= birthday_between_q(self.birthday_from, self.birthday_to)
        if self.cf:
            condition &= _custom_field_condition(self.cf)
        if self.cluster is not None:
            condition &= Q(score__cluster=self.cluster)
        queryset = queryset.filter(condition)
        # Tag names and choices are stored cleaned (NFKC, no control characters); compare like with like.
        for name in dict.fromkeys(clean_text(t) for t in self.tag if clean_text(t)):
            queryset = queryset.filter(pk__in=CustomerTag.objects.filter(tag__name=name).values("customer_id"))
        if self.segment is not None:
            queryset = queryset.filter(
                pk__in=SegmentMember.objects.filter(segment_id=self.segment).values("customer_id")
            )
        ordering = SORTS[self.sort]
        if self.q and self.q.strip():
            queryset = search_filter(queryset, self.q, newest_first=self.sort != "created")
            if self.sort in ("-created", "created") and "search_rowid" in queryset.query.annotations:
                ordering = (self.sort.replace("created", "search_rowid"),)
        return queryset.order_by(*ordering)


def _custom_field_condition(items: list[str]) -> Q:
    pairs = [(clean_text(k), clean_text(v)) for k, _, v in (item.partition(":") for item in items if ":" in item)]
    definitions = {d.key: d for d in CustomFieldDefinition.objects.filter(key__in=[k for k, _ in pairs])}
    condition = Q()
    for key, value in pairs:
        definition = definitions.get(key)
        if definition is None:
            return Q(pk__in=[])
        lookup = f"custom_fields__{key}"
        if definition.field_type == c.CustomFieldType.MULTI_CHOICE:
            # A JSON list as text contains `"value"` exactly when the list has the value, on both backends.
            condition &= Q(**{f"{lookup}__icontains": f'"{value}"'})
        elif definition.field_type == c.CustomFieldType.NUMBER:
            try:
                number = float(value)
            except ValueError:
                return Q(pk__in=[])
            condition &= Q(**{lookup: int(number) if number.is_integer() else number})
        else:
            condition &= Q(**{lookup: value})
    return condition
