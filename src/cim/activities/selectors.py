"""Reads of a customer's history that pages and the API share. Lists apply the user's customer scope here;
callers of the per-customer reads pass a customer already in the user's scope."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.http import Http404
from django.utils.translation import gettext as _

from cim.activities.models import BehaviourEvent, Interaction, Order, Product, TouchPoint
from cim.customers.models import Customer

# Most-viewed pages and products are counted over this many latest views: enough to say what interests the
# customer, and a bounded read for customers with years of events.
VIEWS_COUNTED = 1000
CENT = Decimal("0.01")
COUNTED_STATUSES = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)


@dataclass
class CustomerActivity:
    touches: list[TouchPoint]  # first touch, then last touch
    last_seen: datetime | None
    most_viewed: list[tuple[str, int]]


def customer_activity(*, customer: Customer, has_events: bool = True) -> CustomerActivity:
    """The customer's first and last touch, when last seen and what they view most (the events themselves are on
    the timeline). `has_events=False`: the caller knows the customer has none, and two queries are spared."""
    touches = TouchPoint.objects.filter(customer=customer).select_related("source").order_by("kind")
    if not has_events:
        return CustomerActivity(touches=list(touches), last_seen=None, most_viewed=[])
    views = (
        BehaviourEvent.objects.filter(customer=customer, type__in=("page", "screen", "track"))
        .order_by("-occurred_at", "-id")
        .values_list("type", "name", "properties")[:VIEWS_COUNTED]
    )
    viewed = Counter(filter(None, (_viewed(type_, name, properties) for type_, name, properties in views)))
    last = BehaviourEvent.objects.filter(customer=customer).order_by("-occurred_at", "-id").values("occurred_at")[:1]
    return CustomerActivity(
        touches=list(touches),
        last_seen=next((row["occurred_at"] for row in last), None),
        most_viewed=viewed.most_common(5),
    )


def _viewed(type_: str, name: str, properties: dict) -> str:
    """What a view was of: a page's name or path, or the product of a "Product Viewed" track call."""
    if type_ == "track":
        if name.lower().replace("_", " ") != "product viewed":
            return ""
        return str(properties.get("name") or properties.get("sku") or properties.get("product_id") or "")
    return name or str(properties.get("path") or properties.get("url") or "")


@dataclass
class OrderSummary:
    orders: int  # paid or partly refunded: purchases that still count
    spent: Decimal  # net of refunds; cancelled and unpaid orders add nothing
    refunded: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None

    @property
    def average(self) -> Decimal | None:
        return (self.spent / self.orders).quantize(CENT) if self.orders else None


def customer_order_summary(*, customer: Customer, has_orders: bool = True) -> OrderSummary:
    """The customer's purchases summed; `has_orders=False`: the caller knows there are none (no query)."""
    if not has_orders:
        return OrderSummary(orders=0, spent=Decimal(0), refunded=Decimal(0), first_order_at=None, last_order_at=None)
    counted = Q(status__in=COUNTED_STATUSES)
    totals = Order.objects.filter(customer=customer).aggregate(
        orders=Count("pk", filter=counted),
        spent=Sum("net_amount"),
        refunded=Sum("refunded_amount"),
        first=Min("ordered_at", filter=counted),
        last=Max("ordered_at", filter=counted),
    )
    return OrderSummary(
        orders=totals["orders"],
        # SQLite sums decimals in floating point: back to cents.
        spent=Decimal(totals["spent"] or 0).quantize(CENT),
        refunded=Decimal(totals["refunded"] or 0).quantize(CENT),
        first_order_at=totals["first"],
        last_order_at=totals["last"],
    )


def order_list(*, user, customer: Customer | None = None) -> QuerySet[Order]:
    """Orders of the customers `user` may see (of one customer when given), newest first."""
    orders = Order.objects.filter(customer__in=Customer.objects.visible_to(user).values("pk"))
    if customer is not None:
        orders = orders.filter(customer=customer)
    return orders.select_related("customer").order_by("-ordered_at", "-id")


def order_get(*, user, pk: int) -> Order:
    order = order_list(user=user).prefetch_related("lines", "refunds").filter(pk=pk).first()
    if order is None:
        raise Http404(_("No such order."))
    return order


def interaction_list(*, user, customer: Customer | None = None) -> QuerySet[Interaction]:
    interactions = Interaction.objects.filter(customer__in=Customer.objects.visible_to(user).values("pk"))
    if customer is not None:
        interactions = interactions.filter(customer=customer)
    return interactions.select_related("customer", "logged_by").order_by("-occurred_at", "-id")


def interaction_get(*, user, pk: int) -> Interaction:
    interaction = interaction_list(user=user).prefetch_related("attachments", "staff").filter(pk=pk).first()
    if interaction is None:
        raise Http404(_("No such interaction."))
    return interaction


def product_list(*, q: str = "", category: str = "") -> QuerySet[Product]:
    products = Product.objects.order_by("sku")
    if q:
        products = products.filter(Q(sku__icontains=q) | Q(name__icontains=q))
    if category:
        products = products.filter(category=category)
    return products
