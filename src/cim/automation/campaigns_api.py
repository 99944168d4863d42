"""The campaigns API: definitions with their variants, the steps of sending, the report and a preview."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.automation.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_schedule,
    campaign_start,
    campaign_update,
)
from cim.automation.campaigns_selectors import campaign_get, campaign_list, campaign_preview, campaign_report
from cim.automation.models import Campaign
from cim.customers.schemas import Id
from cim.customers.services import PermissionDenied
from cim.privacy.models import ConsentPurpose

router = Router(tags=["campaigns"])
TEMPLATE_HELP = (
    "Jinja-style safe template over the customer's fields allowed for messaging and `recommendations` "
    "(products analytics suggests); see docs/messages.md"
)


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class ContentIn(Schema):
    subject: str = Field(min_length=1, max_length=300, description=TEMPLATE_HELP)
    body: str = Field(min_length=1, description="The text part. " + TEMPLATE_HELP)
    html: str = Field("", description="The HTML part (optional)")
    language: str = Field("zh-hans", description="zh-hans or en")


class VariantIn(ContentIn):
    translations: list[ContentIn] = Field(
        [],
        max_length=4,
        description="The same variant in other languages: each recipient gets the one in the language they "
        "consented in, else the site's default language",
    )


class ContentOut(Schema):
    subject: str
    body: str
    html: str
    language: str


class VariantOut(Schema):
    label: str
    subject: str
    body: str
    html: str
    language: str
    translations: list[ContentOut]

    @staticmethod
    def resolve_translations(obj):
        return obj.translations.order_by("language")

    @staticmethod
    def resolve_subject(obj) -> str:
        return obj.template.subject

    @staticmethod
    def resolve_body(obj) -> str:
        return obj.template.body

    @staticmethod
    def resolve_html(obj) -> str:
        return obj.template.html

    @staticmethod
    def resolve_language(obj) -> str:
        return obj.template.language


class CampaignOut(Schema):
    id: int
    name: str
    description: str
    channel: str
    purpose: ConsentPurpose
    segment: int = Field(description="The audience: a segment's or static list's id")
    status: Campaign.Status
    scheduled_at: datetime | None
    test_percent: int
    test_metric: Campaign.Metric
    test_wait_hours: int
    winner: str | None = Field(description="The winning variant's label, once chosen")
    throttle_per_minute: int
    attribution_days: int
    cost: Decimal
    variants: list[VariantOut]
    started_at: datetime | None
    test_ends_at: datetime | None
    finished_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_segment(obj) -> int:
        return obj.segment_id

    @staticmethod
    def resolve_winner(obj) -> str | None:
        return obj.winner.label if obj.winner else None

    @staticmethod
    def resolve_variants(obj):
        return obj.variants.select_related("template").prefetch_related("translations").order_by("label")


class CampaignIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=500)
    purpose: ConsentPurpose = ConsentPurpose.MARKETING
    segment: Id = Field(description="The audience: a segment's or static list's id")
    variants: list[VariantIn] = Field(min_length=1, max_length=5, description="A, B, ... in this order")
    test_percent: int = Field(0, ge=0, le=90, description="Share of the audience in the A/B test (0: no test)")
    test_metric: Campaign.Metric = Campaign.Metric.CLICK_RATE
    test_wait_hours: int = Field(4, ge=1, le=336, description="Hours before the winner is picked")
    throttle_per_minute: int = Field(0, ge=0, description="At most this many messages a minute; 0 for no limit")
    attribution_days: int = Field(7, ge=1, le=90, description="Orders this many days after a click are credited")
    cost: Decimal = Field(Decimal(0), ge=0, max_digits=14, decimal_places=2)


class CampaignPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    purpose: ConsentPurpose | None = None
    segment: Id | None = None
    variants: list[VariantIn] | None = Field(None, min_length=1, max_length=5)
    test_percent: int | None = Field(None, ge=0, le=90)
    test_metric: Campaign.Metric | None = None
    test_wait_hours: int | None = Field(None, ge=1, le=336)
    throttle_per_minute: int | None = Field(None, ge=0)
    attribution_days: int | None = Field(None, ge=1, le=90)
    cost: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)


class ScheduleIn(Schema):
    at: datetime | None = Field(description="When to send; null to go back to draft")


class FiguresOut(Schema):
    label: str
    queued: int
    suppressed: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    failed: int
    opened: int
    clicked: int
    unsubscribed: int
    converted: int = Field(description="Customers with an order credited")
    orders: int
    revenue: Decimal
    open_rate: float
    click_rate: float
    conversion_rate: float


class ReportOut(Schema):
    total: FiguresOut
    variants: list[FiguresOut]
    winner: str | None
    cost: Decimal
    roi: float | None = Field(description="(revenue - cost) / cost; null without a cost")
    suppressed: dict[str, int] = Field(description="Messages not sent, by reason")
    hourly: list[list] = Field(description="[hour, opens, clicks] since the start")


class PreviewIn(Schema):
    customer: str = Field(description="The customer number to render the variants for")


class RenderedOut(Schema):
    label: str
    subject: str
    body: str
    html: str


@router.get("/campaigns", response=list[CampaignOut], summary="Campaigns, newest first")
def list_campaigns(request, status: Campaign.Status | None = None):
    _require(request, Perm.ANALYTICS_VIEW)
    return campaign_list(status=status).prefetch_related("variants__template", "variants__translations")


@router.post("/campaigns", response={201: CampaignOut}, summary="Create a campaign (a draft)")
def create(request, body: CampaignIn):
    _require(request, Perm.CAMPAIGN_MANAGE)
    data = body.model_dump()
    return Status(201, campaign_create(actor=request.auth, **data))


@router.get("/campaigns/{campaign_id}", response=CampaignOut)
def read(request, campaign_id: int):
    _require(request, Perm.ANALYTICS_VIEW)
    return campaign_get(pk=campaign_id)


@router.patch("/campaigns/{campaign_id}", response=CampaignOut, summary="Change a campaign (after the start: cost, "
              "description and attribution window only)")  # fmt: skip
def update(request, campaign_id: int, body: CampaignPatch):
    _require(request, Perm.CAMPAIGN_MANAGE)
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None)
    if nulls:
        raise ValidationError({name: [_("This field cannot be null.")] for name in nulls})
    return campaign_update(campaign=campaign_get(pk=campaign_id), actor=request.auth, **changes)


@router.delete("/campaigns/{campaign_id}", response={204: None}, summary="Delete a campaign that has not started")
def delete(request, campaign_id: int):
    _require(request, Perm.CAMPAIGN_MANAGE)
    campaign_delete(campaign=campaign_get(pk=campaign_id), actor=request.auth)
    return Status(204, None)


@router.post("/campaigns/{campaign_id}/schedule", response=CampaignOut, summary="Send at a time, or unschedule")
def schedule(request, campaign_id: int, body: ScheduleIn):
    _require(request, Perm.CAMPAIGN_MANAGE)
    return campaign_schedule(campaign=campaign_get(pk=campaign_id), at=body.at, actor=request.auth)


@router.post("/campaigns/{campaign_id}/start", response=CampaignOut, summary="Start now, or resume when paused")
def start(request, campaign_id: int):
    _require(request, Perm.CAMPAIGN_MANAGE)
    return campaign_start(campaign=campaign_get(pk=campaign_id), actor=request.auth)


@router.post("/campaigns/{campaign_id}/pause", response=CampaignOut, summary="Hold the messages not yet sent")
def pause(request, campaign_id: int):
    _require(request, Perm.CAMPAIGN_MANAGE)
    return campaign_pause(campaign=campaign_get(pk=campaign_id), actor=request.auth)


@router.post("/campaigns/{campaign_id}/cancel", response=CampaignOut, summary="End it; unsent messages are dropped")
def cancel(request, campaign_id: int):
    _require(request, Perm.CAMPAIGN_MANAGE)
    return campaign_cancel(campaign=campaign_get(pk=campaign_id), actor=request.auth)


def _figures(figures) -> dict:
    return {
        **vars(figures),
        "open_rate": figures.open_rate,
        "click_rate": figures.click_rate,
        "conversion_rate": figures.conversion_rate,
    }


@router.get("/campaigns/{campaign_id}/report", response=ReportOut, summary="Sent, opened, clicked, converted, ROI")
def report(request, campaign_id: int):
    _require(request, Perm.ANALYTICS_VIEW)
    campaign = campaign_get(pk=campaign_id)
    result = campaign_report(campaign=campaign)
    return {
        "total": _figures(result.total),
        "variants": [_figures(v) for v in result.variants],
        "winner": campaign.winner.label if campaign.winner else None,
        "cost": result.cost,
        "roi": result.roi,
        "suppressed": result.suppressed,
        "hourly": result.hourly,
    }


@router.post("/campaigns/{campaign_id}/preview", response=list[RenderedOut], summary="The variants as one customer "
             "would get them")  # fmt: skip
def preview(request, campaign_id: int, body: PreviewIn):
    _require(request, Perm.CAMPAIGN_MANAGE)
    _customer, rendered = campaign_preview(
        campaign=campaign_get(pk=campaign_id), user=request.auth, number=body.customer
    )
    return [{"label": label, "subject": r.subject, "body": r.body, "html": r.html or ""} for label, r in rendered]
