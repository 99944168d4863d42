"""The shares API (信息共享): share a customer, a list or a segment with a team, list shares, revoke one. The
customers shared with the caller's team are read through `GET /customers` (`shared=true` for only them)."""

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.models import Team
from cim.accounts.roles import Perm, has_perm
from cim.customers.models import Share
from cim.customers.schemas import MAX_ID
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied
from cim.customers.sharing import DEFAULT_DAYS, MAX_DAYS, share_create, share_revoke
from cim.customers.sharing_selectors import ShareFilter, share_get, share_list
from cim.segments.models import Segment

router = Router(tags=["sharing"])


class ShareIn(Schema):
    customer: str | None = Field(None, max_length=40, description="The customer number to share; or `segment`")
    segment: int | None = Field(None, ge=1, le=MAX_ID, description="The list or segment id to share")
    team: str = Field(min_length=1, max_length=100, description="The receiving team's name")
    include_subteams: bool = Field(False, description="Share with the whole department: the team and those under it")
    access: Share.Access = Share.Access.READ
    reason: str = Field(min_length=1, max_length=500, description="Why: shown to the recipients")
    until: date | None = Field(
        None, description=f"The last day of the share (default {DEFAULT_DAYS} days from today, at most {MAX_DAYS})"
    )


class ShareOut(Schema):
    id: int
    customer: str | None = Field(description="The customer's number, for a customer share")
    segment: int | None = Field(description="The list's or segment's id, for a list or segment share")
    segment_name: str | None
    team: str
    team_id: int
    include_subteams: bool
    access: Share.Access
    reason: str
    until: date = Field(description="The last day of the share")
    expires_at: datetime
    shared_by: str | None
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool

    @staticmethod
    def resolve_customer(obj) -> str | None:
        return obj.customer.number if obj.customer_id else None

    @staticmethod
    def resolve_segment(obj) -> int | None:
        return obj.segment_id

    @staticmethod
    def resolve_segment_name(obj) -> str | None:
        return obj.segment.name if obj.segment_id else None

    @staticmethod
    def resolve_team(obj) -> str:
        return obj.team.name

    @staticmethod
    def resolve_until(obj) -> date:
        return obj.last_day

    @staticmethod
    def resolve_shared_by(obj) -> str | None:
        return obj.shared_by.username if obj.shared_by_id else None

    @staticmethod
    def resolve_revoked_by(obj) -> str | None:
        return obj.revoked_by.username if obj.revoked_by_id else None

    @staticmethod
    def resolve_active(obj) -> bool:
        return obj.is_active


@router.get("/shares", response=list[ShareOut], summary="Shares I made and shares my team receives")
def list_shares(request, filters: Query[ShareFilter], limit: int = Query(100, ge=1, le=1000)):
    return list(share_list(user=request.auth, filters=filters)[:limit])


@router.post("/shares", response={201: ShareOut}, summary="Share a customer, list or segment with a team")
def create_share(request, payload: ShareIn):
    if not has_perm(request.auth, Perm.CUSTOMER_SHARE):
        raise PermissionDenied(Perm.CUSTOMER_SHARE)
    customer = customer_get(user=request.auth, number=payload.customer) if payload.customer else None
    segment = get_object_or_404(Segment, pk=payload.segment) if payload.segment else None
    team = Team.objects.filter(name=payload.team.strip()).first()
    if team is None:
        raise ValidationError({"team": [_("There is no team with this name.")]})
    share = share_create(
        actor=request.auth,
        customer=customer,
        segment=segment,
        team=team,
        include_subteams=payload.include_subteams,
        access=payload.access,
        reason=payload.reason,
        until=payload.until,
    )
    return Status(201, share_get(user=request.auth, pk=share.pk))


@router.get("/shares/{share_id}", response=ShareOut, summary="Read a share")
def read_share(request, share_id: int = Path(..., ge=1, le=MAX_ID)):
    return share_get(user=request.auth, pk=share_id)


@router.delete("/shares/{share_id}", response=ShareOut, summary="Revoke a share (its record is kept)")
def revoke_share(request, share_id: int = Path(..., ge=1, le=MAX_ID)):
    share = share_revoke(share=share_get(user=request.auth, pk=share_id), actor=request.auth)
    return share_get(user=request.auth, pk=share.pk)
