"""The history API: a customer's timeline and activity summary, orders and refunds, products, interactions and
their attachments. Validates and calls services only."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import File, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.activities.history_schemas import InteractionInput, OrderInput, ProductInput, RefundInput
from cim.activities.interactions import attachment_add, attachment_problem, interaction_log
from cim.activities.models import Attachment, Order, Product
from cim.activities.orders import order_cancel, order_create, order_mark_paid, order_refund, product_save
from cim.activities.performance import performance_report
from cim.activities.selectors import (
    customer_activity,
    customer_order_summary,
    interaction_get,
    interaction_list,
    order_get,
    order_list,
    product_list,
)
from cim.activities.timeline import SOURCES, Cursor, timeline_page
from cim.core.pagination import keyset_page
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied

router = Router(tags=["history"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class TimelineEntryOut(Schema):
    at: datetime
    kind: str
    id: int = Field(validation_alias="key")
    title: str
    detail: str
    url: str
    actor: str
    badges: list[str]
    changes: list[tuple[str, str, str]] = Field(description="(field, old value, new value)")
    note: str


class TimelineOut(Schema):
    items: list[TimelineEntryOut]
    next_cursor: str | None


class TimelineFilter(Schema):
    kinds: list[str] = Field(
        default_factory=list, description="Kinds to include (default: all), e.g. order, interaction, change"
    )


@router.get("/customers/{number}/timeline", response=TimelineOut, summary="A customer's timeline, newest first")
def timeline(
    request,
    number: str,
    filters: Query[TimelineFilter],
    cursor: str | None = None,
    limit: int = Query(30, ge=1, le=200),
):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    kinds = filters.kinds
    unknown = sorted(set(kinds or ()) - set(SOURCES))
    if unknown:
        raise ValidationError({"kinds": _("Unknown kinds: %(kinds)s.") % {"kinds": ", ".join(unknown)}})
    before = Cursor.decode(cursor)
    if cursor and before is None:
        raise ValidationError({"cursor": _("The cursor is not valid; start again without it.")})
    page = timeline_page(customer_id=customer.pk, kinds=kinds, before=before, limit=limit)
    return {"items": page.entries, "next_cursor": page.next_cursor.encode() if page.next_cursor else None}


class OrderSummaryOut(Schema):
    orders: int = Field(description="Paid or partly refunded orders")
    spent: Decimal = Field(description="Net of refunds; cancelled and unpaid orders count for nothing")
    refunded: Decimal
    average: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None


class ActivityOut(Schema):
    orders: OrderSummaryOut
    last_seen: datetime | None
    most_viewed: list[tuple[str, int]]


@router.get("/customers/{number}/activity", response=ActivityOut, summary="A customer's purchase and activity summary")
def activity(request, number: str):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    summary = customer_activity(customer=customer)
    return {
        "orders": customer_order_summary(customer=customer),
        "last_seen": summary.last_seen,
        "most_viewed": summary.most_viewed,
    }


class OrderLineOut(Schema):
    sku: str
    name: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    amount: Decimal


class RefundOut(Schema):
    amount: Decimal
    reason: str
    refunded_at: datetime


class OrderOut(Schema):
    id: int
    customer: str = Field(validation_alias="customer.number")
    number: str
    system: str
    status: Order.Status
    channel: str
    store: str
    currency: str
    ordered_at: datetime
    lines_amount: Decimal
    discount_amount: Decimal
    total_amount: Decimal
    refunded_amount: Decimal
    net_amount: Decimal


class OrderDetailOut(OrderOut):
    lines: list[OrderLineOut]
    refunds: list[RefundOut]


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: str | None


@router.get("/orders", response=OrderPage, summary="List orders")
def list_orders(
    request,
    status: Order.Status | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    _require(request, Perm.CUSTOMER_VIEW)
    orders = order_list(user=request.auth)
    if status:
        orders = orders.filter(status=status)
    if since:
        orders = orders.filter(ordered_at__gte=since)
    if until:
        orders = orders.filter(ordered_at__lt=until)
    items, next_cursor = keyset_page(orders, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/customers/{number}/orders", response=OrderPage, summary="A customer's orders")
def customer_orders(request, number: str, cursor: str | None = None, limit: int = Query(50, ge=1, le=500)):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    items, next_cursor = keyset_page(order_list(user=request.auth, customer=customer), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/customers/{number}/orders", response={201: OrderDetailOut}, summary="Record an order")
def create_order(request, number: str, payload: OrderInput):
    _require(request, Perm.ORDER_MANAGE)
    customer = customer_get(user=request.auth, number=number)
    order = order_create(customer=customer, data=payload, actor=request.auth)
    return Status(201, order_get(user=request.auth, pk=order.pk))


@router.get("/orders/{order_id}", response=OrderDetailOut, summary="An order with its lines and refunds")
def get_order(request, order_id: int):
    _require(request, Perm.CUSTOMER_VIEW)
    return order_get(user=request.auth, pk=order_id)


@router.post("/orders/{order_id}/refund", response=OrderDetailOut, summary="Refund an order, in part or in full")
def refund_order(request, order_id: int, payload: RefundInput):
    _require(request, Perm.ORDER_MANAGE)
    order_refund(order=order_get(user=request.auth, pk=order_id), data=payload, actor=request.auth)
    return order_get(user=request.auth, pk=order_id)


class CancelIn(Schema):
    reason: str = Field("", max_length=200)


@router.post("/orders/{order_id}/cancel", response=OrderDetailOut, summary="Cancel an order")
def cancel_order(request, order_id: int, payload: CancelIn):
    _require(request, Perm.ORDER_MANAGE)
    order_cancel(order=order_get(user=request.auth, pk=order_id), reason=payload.reason, actor=request.auth)
    return order_get(user=request.auth, pk=order_id)


@router.post("/orders/{order_id}/pay", response=OrderDetailOut, summary="Mark a pending order paid")
def pay_order(request, order_id: int):
    _require(request, Perm.ORDER_MANAGE)
    order_mark_paid(order=order_get(user=request.auth, pk=order_id), actor=request.auth)
    return order_get(user=request.auth, pk=order_id)


class ProductOut(Schema):
    sku: str
    name: str
    category: str
    price: Decimal | None
    currency: str
    is_active: bool


@router.get("/products", response=list[ProductOut], summary="The product catalogue")
def list_products(request, q: str = "", category: str = "", limit: int = Query(200, ge=1, le=1000)):
    _require(request, Perm.CUSTOMER_VIEW)
    return list(product_list(q=q, category=category)[:limit])


@router.put("/products/{sku}", response=ProductOut, summary="Create or update a product")
def save_product(request, sku: str, payload: ProductInput):
    _require(request, Perm.ORDER_MANAGE)
    if payload.sku != sku:
        raise ValidationError({"sku": _("The SKU in the body differs from the one in the path.")})
    return product_save(data=payload, actor=request.auth)


@router.get("/products/{sku}", response=ProductOut, summary="A product")
def get_product(request, sku: str):
    _require(request, Perm.CUSTOMER_VIEW)
    return get_object_or_404(Product, sku=sku)


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class InteractionOut(Schema):
    id: int
    customer: str = Field(validation_alias="customer.number")
    kind: str
    direction: str
    occurred_at: datetime
    duration_minutes: int | None
    subject: str
    body: str
    outcome: str
    contacts: list[str]
    logged_by: str | None = Field(None, validation_alias="logged_by.username")


class InteractionDetailOut(InteractionOut):
    staff: list[str]
    attachments: list[AttachmentOut]

    @staticmethod
    def resolve_staff(obj) -> list[str]:
        return [user.username for user in obj.staff.all()]


class InteractionPage(Schema):
    items: list[InteractionOut]
    next_cursor: str | None


@router.get("/customers/{number}/interactions", response=InteractionPage, summary="A customer's interactions")
def customer_interactions(request, number: str, cursor: str | None = None, limit: int = Query(50, ge=1, le=500)):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    items, next_cursor = keyset_page(interaction_list(user=request.auth, customer=customer), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/customers/{number}/interactions", response={201: InteractionDetailOut}, summary="Log an interaction")
def create_interaction(request, number: str, payload: InteractionInput):
    _require(request, Perm.ACTIVITY_LOG)
    customer = customer_get(user=request.auth, number=number)
    interaction = interaction_log(customer=customer, data=payload, actor=request.auth)
    return Status(201, interaction_get(user=request.auth, pk=interaction.pk))


@router.get("/interactions/{interaction_id}", response=InteractionDetailOut, summary="An interaction")
def get_interaction(request, interaction_id: int):
    _require(request, Perm.CUSTOMER_VIEW)
    return interaction_get(user=request.auth, pk=interaction_id)


@router.post(
    "/interactions/{interaction_id}/attachments",
    response={201: AttachmentOut},
    summary="Attach a file to an interaction (multipart, field `file`)",
)
def add_attachment(request, interaction_id: int, file: File[UploadedFile]):
    _require(request, Perm.ACTIVITY_LOG)
    interaction = interaction_get(user=request.auth, pk=interaction_id)
    problem = attachment_problem(file)
    if problem:
        raise ValidationError({"file": problem})
    return Status(201, attachment_add(interaction=interaction, upload=file, actor=request.auth))


@router.get("/attachments/{attachment_id}", summary="Download an attachment")
def download_attachment(request, attachment_id: int):
    _require(request, Perm.CUSTOMER_VIEW)
    attachment = get_object_or_404(Attachment, pk=attachment_id)
    interaction_get(user=request.auth, pk=attachment.interaction_id)  # 404 outside the caller's scope
    return attachment_response(attachment)


def attachment_response(attachment: Attachment) -> FileResponse:
    """A stored file as a download, never rendered in the browser."""
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


class StaffFiguresOut(Schema):
    customers: int
    follow_ups_done: int
    follow_ups_on_time: int
    on_time_rate: float | None
    follow_ups_overdue: int
    interactions: int
    tickets_resolved: int
    first_response_minutes: float | None
    resolution_hours: float | None
    first_response_breaches: int
    csat_answers: int
    csat: float | None = Field(description="Share of CSAT answers of 4 or 5")
    earlier_buyers: int
    retained: int
    retention: float | None
    revenue: Decimal


class StaffRowOut(Schema):
    username: str = Field(validation_alias="user.username")
    team: str | None = Field(None, validation_alias="user.team.name")
    figures: StaffFiguresOut


class TeamRowOut(Schema):
    name: str
    members: int
    figures: StaffFiguresOut


class PerformanceOut(Schema):
    since: datetime
    until: datetime
    staff: list[StaffRowOut]
    teams: list[TeamRowOut]


@router.get("/performance", response=PerformanceOut, summary="Staff performance per person and team")
def performance(request, since: datetime | None = None, until: datetime | None = None):
    _require(request, Perm.PERFORMANCE_VIEW)
    return performance_report(user=request.auth, since=since, until=until)
