"""Every write of products, orders and refunds. An order's `net_amount` is kept right here, on each change, so that
every total (the customer page, reports, RFM) adds up one column and agrees with the others."""

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from cim.activities.history_schemas import OrderInput, OrderLineInput, ProductInput, RefundInput
from cim.activities.models import Order, OrderLine, Product, Refund
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.customers.models import Customer
from cim.service.surveys import survey_send_after_order

CENT = Decimal("0.01")
Status = Order.Status


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def settle(order: Order) -> None:
    """Status and net amount from the total, the refunds and whether the order was cancelled or is unpaid."""
    if order.status in (Status.CANCELLED, Status.PENDING):
        order.net_amount = Decimal(0)
        return
    if order.refunded_amount <= 0:
        order.status = Status.PAID
    elif order.refunded_amount < order.total_amount:
        order.status = Status.PARTIALLY_REFUNDED
    else:
        order.status = Status.REFUNDED
    order.net_amount = order.total_amount - order.refunded_amount


def product_save(*, data: ProductInput, actor) -> Product:
    """Create the product of `data.sku`, or update it."""
    with transaction.atomic():
        product, created = Product.objects.update_or_create(sku=data.sku, defaults=data.model_dump(exclude={"sku"}))
        audit_record(actor=actor, action="product.create" if created else "product.update", target=product)
    return product


def line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Decimal:
    return money(quantity * unit_price - discount)


def _line(data: OrderLineInput, products: dict[str, Product], number: int) -> OrderLine:
    product = products.get(data.sku)
    unit_price = data.unit_price if data.unit_price is not None else (product.price if product else None)
    if unit_price is None:
        raise ValidationError(
            {f"lines.{number}.unit_price": _("Enter a unit price: the SKU is not in the catalogue with a price.")}
        )
    amount = line_amount(data.quantity, unit_price, data.discount)
    if amount < 0:
        raise ValidationError({f"lines.{number}.discount": _("The discount is larger than the line.")})
    return OrderLine(
        product=product,
        sku=data.sku,
        name=data.name or (product.name if product else ""),
        quantity=data.quantity,
        unit_price=unit_price,
        discount=data.discount,
        amount=amount,
    )


def new_order_number() -> str:
    return f"O{timezone.localdate():%Y%m%d}{get_random_string(6, '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ')}"


def order_create(*, customer: Customer, data: OrderInput, actor) -> Order:
    """Record an order with its lines; an order number already used in its system is refused."""
    if customer.merged_into_id or customer.is_archived:
        raise ValidationError({"customer": _("Orders can only be added to an active customer.")})
    number = data.number or new_order_number()
    if Order.objects.filter(system=data.system, number=number).exists():
        raise ValidationError({"number": _("Order %(number)s is already recorded.") % {"number": number}})
    products = Product.objects.in_bulk({line.sku for line in data.lines if line.sku}, field_name="sku")
    lines = [_line(line, products, i) for i, line in enumerate(data.lines)]
    lines_amount = sum((line.amount for line in lines), Decimal(0))
    total = lines_amount - data.discount
    if total < 0:
        raise ValidationError({"discount": _("The order discount is larger than its lines.")})
    if data.refunded > total:
        raise ValidationError({"refunded": _("More is refunded than the order's total.")})
    order = Order(
        customer=customer,
        number=number,
        system=data.system,
        status=data.status,
        channel=data.channel,
        store=data.store,
        currency=data.currency,
        ordered_at=data.ordered_at or timezone.now(),
        lines_amount=lines_amount,
        discount_amount=data.discount,
        total_amount=total,
        refunded_amount=total if data.status == Status.REFUNDED and not data.refunded else data.refunded,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    if order.status == Status.CANCELLED:
        order.cancelled_at = order.ordered_at
    settle(order)
    with transaction.atomic():
        order.save()
        for line in lines:
            line.order = order
        OrderLine.objects.bulk_create(lines)
        if order.refunded_amount:
            Refund.objects.create(order=order, amount=order.refunded_amount, refunded_at=order.ordered_at)
        audit_record(actor=actor, action="order.create", target=order, note=f"customer {customer.pk}")
        event_publish("order.placed", customer_id=customer.pk, data={"order": order.pk, "total": str(total)})
    if order.status == Status.PAID:
        _survey_after(order)
    return order


def _survey_after(order: Order) -> None:
    """Ask the customer how it went once the order is paid, if so configured (`CIM_SURVEY_AFTER_ORDER`)."""
    transaction.on_commit(lambda: survey_send_after_order(customer=order.customer, order_id=order.pk))


def order_refund(*, order: Order, data: RefundInput, actor) -> Order:
    """Give back `data.amount` (by default all that is left) of a paid order."""
    if order.status in (Status.CANCELLED, Status.PENDING, Status.REFUNDED):
        raise ValidationError({"status": _("Only a paid order can be refunded.")})
    left = order.total_amount - order.refunded_amount
    amount = data.amount if data.amount is not None else left
    if amount > left:
        raise ValidationError({"amount": _("At most %(left)s is left to refund.") % {"left": left}})
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        Refund.objects.create(
            order=order,
            amount=amount,
            reason=data.reason,
            refunded_at=data.refunded_at or timezone.now(),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        order.refunded_amount += amount
        settle(order)
        order.save(update_fields=["refunded_amount", "status", "net_amount", "updated_at"])
        audit_record(actor=actor, action="order.refund", target=order, fields=["refunded_amount", "status"])
        event_publish("order.refunded", customer_id=order.customer_id, data={"order": order.pk, "amount": str(amount)})
    return order


def order_cancel(*, order: Order, reason: str = "", actor) -> Order:
    """Cancel an order that was not refunded: it stays on record and counts for nothing."""
    if order.status == Status.CANCELLED:
        return order
    if order.refunded_amount:
        raise ValidationError({"status": _("A refunded order cannot be cancelled; refund the rest instead.")})
    with transaction.atomic():
        order.status = Status.CANCELLED
        order.cancelled_at = timezone.now()
        settle(order)
        order.save(update_fields=["status", "cancelled_at", "net_amount", "updated_at"])
        audit_record(actor=actor, action="order.cancel", target=order, fields=["status"], note=reason)
    return order


def order_mark_paid(*, order: Order, actor) -> Order:
    """A pending order was paid."""
    if order.status != Status.PENDING:
        return order
    with transaction.atomic():
        order.status = Status.PAID
        settle(order)
        order.save(update_fields=["status", "net_amount", "updated_at"])
        audit_record(actor=actor, action="order.pay", target=order, fields=["status"])
    _survey_after(order)
    return order
