"""The messages API: message templates with a preview per customer, sending by hand, and the message log."""

from datetime import datetime
from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.automation.message_admin import (
    MessageFilter,
    message_get,
    message_list,
    message_send,
    message_template_create,
    message_template_get,
    message_template_list,
    message_template_update,
)
from cim.automation.messaging import template_preview
from cim.automation.models.messages import Channel, MessageStatus
from cim.core.pagination import keyset_page
from cim.customers.models import Customer
from cim.customers.schemas import Id
from cim.customers.services import PermissionDenied
from cim.privacy.models import ConsentPurpose
from cim.segments.models import Segment

router = Router(tags=["messages"])
TEMPLATE_HELP = "Jinja2 syntax in a sandbox: {{ customer.display_name }}, {{ recommendations }}, extra context"


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class TemplateOut(Schema):
    id: int
    name: str
    channel: Channel
    purpose: ConsentPurpose
    language: str
    subject: str
    body: str
    html: str
    provider_template_id: str
    params: dict[str, str]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TemplateIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    channel: Channel = Channel.EMAIL
    purpose: ConsentPurpose
    language: str = Field("zh-hans", pattern="^(zh-hans|en)$")
    subject: str = Field("", max_length=300, description=TEMPLATE_HELP)
    body: str = Field(min_length=1, description=TEMPLATE_HELP)
    html: str = Field("", description="Optional HTML body of an email")
    provider_template_id: str = Field("", max_length=100, description="The SMS/WeChat gateway's template id")
    params: dict[str, str] = Field(default_factory=dict, description="Gateway template parameters as expressions")
    is_active: bool = True


class TemplatePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    channel: Channel | None = None
    purpose: ConsentPurpose | None = None
    language: str | None = Field(None, pattern="^(zh-hans|en)$")
    subject: str | None = Field(None, max_length=300)
    body: str | None = Field(None, min_length=1)
    html: str | None = None
    provider_template_id: str | None = Field(None, max_length=100)
    params: dict[str, str] | None = None
    is_active: bool | None = None


class PreviewIn(Schema):
    customer: str = Field(description="The customer number")
    extra_context: dict[str, Any] = Field(default_factory=dict)


class PreviewOut(Schema):
    subject: str
    body: str
    html: str
    params: dict[str, str]


class SendIn(Schema):
    template: Id
    customers: list[str] = Field(default_factory=list, max_length=10000, description="Customer numbers")
    segment: Id | None = Field(None, description="Send to the members of this segment too")
    extra_context: dict[str, Any] = Field(default_factory=dict)
    key: str = Field("", max_length=100, description="Idempotency key: a repeated send with it is a no-op")


class SendOut(Schema):
    queued: int
    suppressed: dict[str, int]
    duplicates: int


class MessageOut(Schema):
    id: int
    customer: str = Field(description="The customer number")
    channel: Channel
    purpose: ConsentPurpose
    template: int | None
    template_name: str
    key: str
    origin: str
    campaign_id: int | None
    rule_run_id: int | None
    status: MessageStatus
    reason: str
    send_after: datetime | None
    attempts: int
    provider: str
    provider_message_id: str
    error: str
    created_at: datetime
    sent_at: datetime | None
    status_at: datetime
    opened_at: datetime | None
    clicked_at: datetime | None

    @staticmethod
    def resolve_customer(obj) -> str:
        return obj.customer.number

    @staticmethod
    def resolve_template(obj) -> int | None:
        return obj.template_id

    @staticmethod
    def resolve_template_name(obj) -> str:
        return obj.template.name if obj.template else ""


class MessagePage(Schema):
    items: list[MessageOut]
    next_cursor: str | None


class MessageFilterIn(Schema):
    customer: str = Field("", description="A customer number")
    status: MessageStatus | None = None
    channel: Channel | None = None
    origin: str = ""
    campaign: int | None = None
    template: Id | None = None


@router.get("/message-templates", response=list[TemplateOut], summary="Message templates")
def list_templates(request, channel: Channel | None = None, active: bool | None = None):
    _require(request, Perm.MESSAGE_SEND)
    return message_template_list(channel=channel or "", active=active)


@router.post("/message-templates", response={201: TemplateOut}, summary="Create a message template")
def create_template(request, body: TemplateIn):
    _require(request, Perm.MESSAGE_SEND)
    return Status(201, message_template_create(data=body.model_dump(), actor=request.auth))


@router.get("/message-templates/{template_id}", response=TemplateOut, summary="A message template")
def get_template(request, template_id: int):
    _require(request, Perm.MESSAGE_SEND)
    return message_template_get(pk=template_id)


@router.patch("/message-templates/{template_id}", response=TemplateOut, summary="Change a message template")
def update_template(request, template_id: int, body: TemplatePatch):
    _require(request, Perm.MESSAGE_SEND)
    template = message_template_get(pk=template_id)
    return message_template_update(template=template, data=body.dict(exclude_unset=True), actor=request.auth)


@router.post(
    "/message-templates/{template_id}/preview", response=PreviewOut, summary="The message one customer would get"
)
def preview_template(request, template_id: int, body: PreviewIn):
    """Strict: a variable the template names but the context lacks is an error, not a blank."""
    _require(request, Perm.MESSAGE_SEND)
    template = message_template_get(pk=template_id)
    customer = Customer.objects.visible_to(request.auth).filter(number=body.customer).first()
    if customer is None:
        raise Http404(_("No such customer."))
    return template_preview(template=template, customer=customer, extra=body.extra_context)


@router.post("/messages", response={202: SendOut}, summary="Send a template to customers or a segment")
def send(request, body: SendIn):
    """Consent, restrictions, suppressed addresses, frequency caps and quiet hours apply; the answer counts the
    messages queued and those not sent, by reason. Delivery happens in the background."""
    _require(request, Perm.MESSAGE_SEND)
    template = message_template_get(pk=body.template)
    segment = None
    if body.segment is not None:
        segment = Segment.objects.filter(pk=body.segment).first()
        if segment is None:
            raise Http404(_("No such segment."))
    ids = list(Customer.objects.visible_to(request.auth).filter(number__in=body.customers).values_list("pk", flat=True))
    if body.customers and not ids:
        raise Http404(_("No such customer."))
    result = message_send(
        template=template,
        customer_ids=ids,
        segment=segment,
        extra_context=body.extra_context,
        key=body.key,
        actor=request.auth,
    )
    return Status(202, {"queued": result.queued, "suppressed": result.suppressed, "duplicates": result.duplicates})


@router.get("/messages", response=MessagePage, summary="Messages to customers, newest first")
def list_messages(
    request, filters: Query[MessageFilterIn], cursor: str | None = None, limit: int = Query(50, ge=1, le=500)
):
    _require(request, Perm.CUSTOMER_VIEW)
    selected = MessageFilter(
        customer=filters.customer,
        status=filters.status or "",
        channel=filters.channel or "",
        origin=filters.origin,
        campaign=filters.campaign,
        template=filters.template,
    )
    items, next_cursor = keyset_page(message_list(user=request.auth, filters=selected), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/messages/{message_id}", response=MessageOut, summary="A message and what became of it")
def get_message(request, message_id: int):
    _require(request, Perm.CUSTOMER_VIEW)
    return message_get(user=request.auth, pk=message_id)
