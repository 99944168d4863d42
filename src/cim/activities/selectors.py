"""Reads of behaviour events that pages and the API share. Callers pass a customer already in the user's scope."""

from dataclasses import dataclass

from cim.activities.models import BehaviourEvent, TouchPoint
from cim.customers.models import Customer

TIMELINE_EVENTS = 20


@dataclass
class CustomerActivity:
    events: list[BehaviourEvent]
    touches: list[TouchPoint]  # first touch, then last touch


def customer_activity(*, customer: Customer, limit: int = TIMELINE_EVENTS) -> CustomerActivity:
    """The customer's latest behaviour events, newest first, with their first and last touch: for the 360° page."""
    events = (
        BehaviourEvent.objects.filter(customer=customer)
        .select_related("source")
        .order_by("-occurred_at", "-id")[:limit]
    )
    touches = TouchPoint.objects.filter(customer=customer).select_related("source").order_by("kind")
    return CustomerActivity(events=list(events), touches=list(touches))
