"""Reads of webhooks that the pages, the API and the CLI share: endpoints, the delivery log, the event catalogue."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from cim.automation.events import CATALOGUE
from cim.automation.models import WebhookDelivery, WebhookEndpoint

# Sent by the test button (and `cim webhooks test`), outside the catalogue.
TEST_EVENT = "webhook.test"


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    """Every endpoint with its number of deliveries waiting and given up."""
    waiting = Q(deliveries__status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED])
    return (
        WebhookEndpoint.objects.select_related("scope_user")
        .annotate(
            waiting=Count("deliveries", filter=waiting),
            dead=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.DEAD)),
        )
        .order_by("id")
    )


def endpoint_get(pk: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint.objects.select_related("scope_user"), pk=pk)


@dataclass(frozen=True)
class DeliveryFilter:
    endpoint: int | None = None
    status: str = ""
    event_type: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None  # the keyset cursor: deliveries older than this id

    def apply(self, queryset: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
        if self.endpoint:
            queryset = queryset.filter(endpoint_id=self.endpoint)
        if self.status:
            queryset = queryset.filter(status=self.status)
        if self.event_type:
            queryset = queryset.filter(event_type=self.event_type)
        if self.since:
            queryset = queryset.filter(created_at__gte=self.since)
        if self.until:
            queryset = queryset.filter(created_at__lt=self.until)
        if self.before:
            queryset = queryset.filter(pk__lt=self.before)
        return queryset


def delivery_list(*, filters: DeliveryFilter) -> QuerySet[WebhookDelivery]:
    """The delivery log, newest first."""
    return filters.apply(WebhookDelivery.objects.select_related("endpoint")).order_by("-id")


def delivery_get(pk: int) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.select_related("endpoint"), pk=pk)


def event_types() -> list[str]:
    return sorted(CATALOGUE)


def catalogue() -> list[dict]:
    """The event catalogue in the current language: each type's version, meaning and `data` keys."""
    return [
        {
            "name": event.name,
            "version": event.version,
            "description": str(event.description),
            "data": {key: str(text) for key, text in event.data.items()},
        }
        for event in CATALOGUE.values()
    ]


def example_payload(name: str) -> dict:
    """A made-up payload of event `name` for the catalogue page (no real customer in it)."""
    event = CATALOGUE[name]
    data = {key: f"<{key}>" for key in event.data}
    data["customer"] = {"number": "C000123", "display_name": "张伟", "lifecycle_stage": "customer", "tags": ["VIP"]}
    return {"type": name, "version": event.version, "timestamp": "2026-12-03T10:00:00+08:00", "data": data}
