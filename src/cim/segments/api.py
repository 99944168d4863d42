"""The segments API: definitions, the rule fields, a preview count, refresh and static-list members. A segment's
customers are read through `GET /customers?segment=ID`, like every other customer filter."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.segments.models import Segment
from cim.segments.rules import OPERATORS, field_catalogue
from cim.segments.selectors import segment_get, segment_list, segment_preview
from cim.segments.services import (
    segment_create,
    segment_delete,
    segment_members_add,
    segment_members_remove,
    segment_refresh,
    segment_update,
)

router = Router(tags=["segments"])
RULES_HELP = (
    'A group: {"match": "all"|"any", "negate": false, "rules": [conditions or groups]}; a condition: '
    '{"field": …, "operator": …, "value": …} (see GET /segments/fields). An empty group places no condition.'
)


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: Segment.Kind
    rules: dict[str, Any]
    tag: str | None = Field(description="The tag kept on exactly the members (tag rule)")
    size: int
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_tag(obj) -> str | None:
        return obj.tag.name if obj.tag else None


class SegmentIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    kind: Segment.Kind = Segment.Kind.DYNAMIC
    rules: dict[str, Any] | None = Field(None, description=RULES_HELP)
    tag: str = Field("", max_length=50, description="Tag rule: members carry this tag; empty for none")


class SegmentPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    rules: dict[str, Any] | None = Field(None, description=RULES_HELP)
    tag: str | None = Field(None, max_length=50)


class FieldOut(Schema):
    key: str
    label: str
    group: str
    type: str
    operators: list[str]
    choices: list[list[str]] | None


class PreviewIn(Schema):
    rules: dict[str, Any] = Field(description=RULES_HELP)


class PreviewOut(Schema):
    count: int = Field(description="Current customers the rules hold")
    sample: list[str] = Field(description="Numbers of a few of them you may see")


class RefreshOut(Schema):
    entered: int
    left: int
    tagged: int
    untagged: int
    size: int


class MembersIn(Schema):
    numbers: list[str] = Field(min_length=1, max_length=1000, description="Customer numbers")


class MembersOut(Schema):
    changed: int
    size: int


@router.get("/segments", response=list[SegmentOut], summary="Segments and static lists")
def list_segments(request, kind: Segment.Kind | None = None):
    _require(request, Perm.CUSTOMER_VIEW)
    return segment_list(kind=kind)


@router.get("/segments/fields", response=list[FieldOut], summary="What rules can name, with operators and choices")
def list_fields(request):
    _require(request, Perm.CUSTOMER_VIEW)
    return [
        {
            "key": f.key,
            "label": str(f.label),
            "group": str(f.group),
            "type": f.type,
            "operators": list(OPERATORS[f.type]),
            "choices": [list(pair) for pair in f.choices()] if f.choices else None,
        }
        for f in field_catalogue().values()
    ]


@router.post("/segments/preview", response=PreviewOut, summary="How many customers these rules hold")
def preview(request, body: PreviewIn):
    _require(request, Perm.SEGMENT_MANAGE)
    count, sample = segment_preview(user=request.auth, rules=body.rules)
    return {"count": count, "sample": [c.number for c in sample]}


@router.post("/segments", response={201: SegmentOut}, summary="Create a segment (filled at once)")
def create(request, body: SegmentIn):
    _require(request, Perm.SEGMENT_MANAGE)
    return Status(201, segment_create(actor=request.auth, **body.model_dump()))


@router.get("/segments/{segment_id}", response=SegmentOut)
def read(request, segment_id: int):
    _require(request, Perm.CUSTOMER_VIEW)
    return segment_get(pk=segment_id)


@router.patch("/segments/{segment_id}", response=SegmentOut, summary="Change a segment; members follow at once")
def update(request, segment_id: int, body: SegmentPatch):
    _require(request, Perm.SEGMENT_MANAGE)
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None and name != "rules")
    if nulls:
        raise ValidationError({name: [_("This field cannot be null.")] for name in nulls})
    return segment_update(segment=segment_get(pk=segment_id), actor=request.auth, **changes)


@router.delete("/segments/{segment_id}", response={204: None}, summary="Delete a segment (its customers stay)")
def delete(request, segment_id: int):
    _require(request, Perm.SEGMENT_MANAGE)
    segment_delete(segment=segment_get(pk=segment_id), actor=request.auth)
    return Status(204, None)


@router.post("/segments/{segment_id}/refresh", response=RefreshOut, summary="Refresh members and the tag rule now")
def refresh(request, segment_id: int):
    _require(request, Perm.SEGMENT_MANAGE)
    run = segment_refresh(segment=segment_get(pk=segment_id), actor=request.auth)
    return {**vars(run), "size": run.segment.size}


def _customer_ids(request, numbers: list[str]) -> list[int]:
    found = dict(Customer.objects.visible_to(request.auth).filter(number__in=numbers).values_list("number", "pk"))
    missing = [n for n in numbers if n not in found]
    if missing:
        raise ValidationError({"numbers": [_("No such customer: %(numbers)s.") % {"numbers": ", ".join(missing[:20])}]})
    return [found[n] for n in numbers]


@router.post("/segments/{segment_id}/members", response=MembersOut, summary="Add customers to a static list")
def add_members(request, segment_id: int, body: MembersIn):
    segment = segment_get(pk=segment_id)
    changed = segment_members_add(
        segment=segment, customer_ids=_customer_ids(request, body.numbers), actor=request.auth
    )
    return {"changed": changed, "size": segment.size}


@router.post("/segments/{segment_id}/members/remove", response=MembersOut, summary="Take customers off a static list")
def remove_members(request, segment_id: int, body: MembersIn):
    segment = segment_get(pk=segment_id)
    changed = segment_members_remove(
        segment=segment, customer_ids=_customer_ids(request, body.numbers), actor=request.auth
    )
    return {"changed": changed, "size": segment.size}
