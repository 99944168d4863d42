"""Timeline entries for orders, refunds, interactions and behaviour events."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.models import BehaviourEvent, Interaction, Order, Refund
from cim.activities.timeline import Cursor, TimelineEntry, older_than, timeline_source


def _amount(value, currency: str) -> str:
    return f"{currency} {number_format(value, 2, force_grouping=True)}"


@timeline_source(
    "order", gettext_lazy("Orders"), rows=lambda customer_id: Order.objects.filter(customer_id=customer_id)
)
def order_entries(*, rows: QuerySet[Order], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    orders = (
        rows.filter(older_than(before, "order", at="ordered_at"))
        .order_by("-ordered_at", "-id")
        .only("number", "status", "channel", "store", "currency", "ordered_at", "total_amount", "net_amount")[:limit]
    )
    return [
        TimelineEntry(
            at=order.ordered_at,
            kind="order",
            key=order.pk,
            title=_("Order %(number)s · %(amount)s")
            % {"number": order.number, "amount": _amount(order.total_amount, order.currency)},
            detail=" · ".join(filter(None, [order.channel, order.store])),
            url=reverse("activities:order", args=[order.pk]),
            badges=[order.get_status_display()],
        )
        for order in orders
    ]


@timeline_source(
    "refund", gettext_lazy("Refunds"), rows=lambda customer_id: Refund.objects.filter(order__customer_id=customer_id)
)
def refund_entries(*, rows: QuerySet[Refund], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    refunds = (
        rows.filter(older_than(before, "refund", at="refunded_at"))
        .select_related("order", "created_by")
        .order_by("-refunded_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=refund.refunded_at,
            kind="refund",
            key=refund.pk,
            title=_("Refund of %(amount)s on order %(number)s")
            % {"amount": _amount(refund.amount, refund.order.currency), "number": refund.order.number},
            detail=refund.reason,
            url=reverse("activities:order", args=[refund.order_id]),
            actor=str(refund.created_by or ""),
        )
        for refund in refunds
    ]


@timeline_source(
    "interaction",
    gettext_lazy("Interactions"),
    rows=lambda customer_id: Interaction.objects.filter(customer_id=customer_id),
)
def interaction_entries(*, rows: QuerySet[Interaction], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    interactions = (
        rows.filter(older_than(before, "interaction", at="occurred_at"))
        .select_related("logged_by")
        .prefetch_related("attachments")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=item.occurred_at,
            kind="interaction",
            key=item.pk,
            title=" · ".join(filter(None, [item.get_kind_display(), item.subject])),
            detail=item.body[:500],
            url=reverse("activities:interaction", args=[item.pk]),
            actor=str(item.logged_by or ""),
            badges=[
                str(label)
                for label in (
                    item.get_direction_display() if item.direction else "",
                    item.get_outcome_display() if item.outcome else "",
                    _("%(n)s files") % {"n": len(item.attachments.all())} if item.attachments.all() else "",
                )
                if label
            ],
        )
        for item in interactions
    ]


@timeline_source(
    "event",
    gettext_lazy("Behaviour events"),
    rows=lambda customer_id: BehaviourEvent.objects.filter(customer_id=customer_id),
)
def event_entries(*, rows: QuerySet[BehaviourEvent], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    events = (
        rows.filter(older_than(before, "event", at="occurred_at"))
        .select_related("source")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=event.occurred_at,
            kind="event",
            key=event.pk,
            title=" · ".join(filter(None, [event.get_type_display(), event.name])),
            detail=str(event.properties.get("url") or event.properties.get("path") or ""),
            badges=[str(label) for label in (event.get_channel_display(), event.source.name) if label],
        )
        for event in events
    ]
