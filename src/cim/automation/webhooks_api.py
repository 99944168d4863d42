"""The webhooks API (administrators: `webhook.manage`): endpoints, their secrets, test sends, the delivery log and
replays; and the event catalogue, which every user may read."""

from datetime import datetime

from ninja import Field, Query, Router, Schema, Status

from cim.accounts.roles import Perm, has_perm
from cim.automation.models import WebhookDelivery
from cim.automation.webhook_selectors import (
    DeliveryFilter,
    catalogue,
    delivery_get,
    delivery_list,
    endpoint_get,
    endpoint_list,
)
from cim.automation.webhook_sender import webhook_test_send
from cim.automation.webhooks import (
    deliveries_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_secret_rotate,
)
from cim.customers.services import PermissionDenied

router = Router(tags=["webhooks"])


def _require(request) -> None:
    if not has_perm(request.auth, Perm.WEBHOOK_MANAGE):
        raise PermissionDenied(Perm.WEBHOOK_MANAGE)


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    event_types: list[str]
    all_events: bool
    scope_role: str
    scope_user: str | None = Field(None, description="The username whose view of customers the payloads carry")
    is_active: bool
    failure_count: int
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str
    previous_secret_expires_at: datetime | None = Field(description="Until when the previous secret still signs")
    created_at: datetime

    @staticmethod
    def resolve_scope_user(obj) -> str | None:
        return obj.scope_user.username if obj.scope_user_id else None


class EndpointWithSecretOut(Schema):
    endpoint: EndpointOut
    secret: str = Field(description="The Standard Webhooks signing secret (`whsec_…`); shown this once")


class EndpointIn(Schema):
    url: str
    description: str = ""
    event_types: list[str] = []
    all_events: bool = False
    scope_role: str = Field("", description="A role that sees every customer (administrator, marketing, …)")
    scope_user: str = Field("", description="Or a username: its record scope and field access apply")
    is_active: bool = True


class EndpointPatch(Schema):
    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    all_events: bool | None = None
    scope_role: str | None = None
    scope_user: str | None = None
    is_active: bool | None = Field(None, description="true switches a disabled endpoint back on")


class SecretOut(Schema):
    secret: str
    previous_valid_until: datetime


class DeliveryOut(Schema):
    id: int
    endpoint: int = Field(alias="endpoint_id")
    message_id: str = Field(description="The `webhook-id` header: the same on every attempt and replay")
    event_id: int | None
    event_type: str
    status: WebhookDelivery.Status
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    response_ms: int | None
    created_at: datetime


class DeliveryDetailOut(DeliveryOut):
    payload: dict
    log: list[dict]


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_before: int | None = Field(None, description="Pass as `before` for the next (older) page")


class DeliveryQuery(Schema):
    endpoint: int | None = None
    status: WebhookDelivery.Status | None = None
    event_type: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = Field(50, ge=1, le=500)


class ReplayIn(Schema):
    endpoint: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    statuses: list[WebhookDelivery.Status] = [WebhookDelivery.Status.FAILED, WebhookDelivery.Status.DEAD]


class ReplayOut(Schema):
    replayed: int


class EventTypeOut(Schema):
    name: str
    version: int
    description: str
    data: dict[str, str]


def _values(payload: Schema) -> dict:
    values = payload.dict(exclude_unset=True)
    return {key: value for key, value in values.items() if value is not None}


@router.get("/events/catalogue", response=list[EventTypeOut], summary="The event types, their versions and data")
def event_catalogue(request):
    return catalogue()


@router.get("/webhooks", response=list[EndpointOut], summary="The webhook endpoints")
def list_endpoints(request):
    _require(request)
    return list(endpoint_list())


@router.post("/webhooks", response={201: EndpointWithSecretOut}, summary="Add an endpoint; its secret is shown once")
def create_endpoint(request, payload: EndpointIn):
    _require(request)
    endpoint, secret = webhook_endpoint_create(data=payload.dict(), actor=request.auth)
    return Status(201, {"endpoint": endpoint, "secret": secret})


@router.get("/webhooks/deliveries", response=DeliveryPage, summary="The delivery log, newest first")
def list_deliveries(request, query: Query[DeliveryQuery]):
    _require(request)
    filters = DeliveryFilter(
        endpoint=query.endpoint,
        status=query.status or "",
        event_type=query.event_type,
        since=query.since,
        until=query.until,
        before=query.before,
    )
    items = list(delivery_list(filters=filters)[: query.limit])
    return {"items": items, "next_before": items[-1].pk if len(items) == query.limit else None}


@router.post("/webhooks/deliveries/replay", response=ReplayOut, summary="Send failed deliveries in a range again")
def replay_deliveries(request, payload: ReplayIn):
    _require(request)
    endpoint = endpoint_get(payload.endpoint) if payload.endpoint else None
    count = deliveries_replay(
        actor=request.auth, endpoint=endpoint, since=payload.since, until=payload.until, statuses=payload.statuses
    )
    return {"replayed": count}


@router.get("/webhooks/deliveries/{delivery_id}", response=DeliveryDetailOut, summary="One delivery and its attempts")
def get_delivery(request, delivery_id: int):
    _require(request)
    return delivery_get(delivery_id)


@router.post("/webhooks/deliveries/{delivery_id}/replay", response=ReplayOut, summary="Send one delivery again")
def replay_delivery(request, delivery_id: int):
    _require(request)
    return {"replayed": deliveries_replay(actor=request.auth, deliveries=[delivery_get(delivery_id)])}


@router.get("/webhooks/{endpoint_id}", response=EndpointOut, summary="One endpoint")
def get_endpoint(request, endpoint_id: int):
    _require(request)
    return endpoint_get(endpoint_id)


@router.patch("/webhooks/{endpoint_id}", response=EndpointOut, summary="Change an endpoint, or switch it back on")
def update_endpoint(request, endpoint_id: int, payload: EndpointPatch):
    _require(request)
    return webhook_endpoint_update(endpoint=endpoint_get(endpoint_id), data=_values(payload), actor=request.auth)


@router.delete("/webhooks/{endpoint_id}", response={204: None}, summary="Delete an endpoint and its delivery log")
def delete_endpoint(request, endpoint_id: int):
    _require(request)
    webhook_endpoint_delete(endpoint=endpoint_get(endpoint_id), actor=request.auth)
    return Status(204, None)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    response=SecretOut,
    summary="A new signing secret (shown once); the old one signs beside it for the grace period",
)
def rotate_secret(request, endpoint_id: int):
    _require(request)
    endpoint = endpoint_get(endpoint_id)
    secret = webhook_secret_rotate(endpoint=endpoint, actor=request.auth)
    return {"secret": secret, "previous_valid_until": endpoint.previous_secret_expires_at}


@router.post("/webhooks/{endpoint_id}/test", response=DeliveryDetailOut, summary="Send a test message now")
def test_endpoint(request, endpoint_id: int):
    _require(request)
    return webhook_test_send(endpoint=endpoint_get(endpoint_id), actor=request.auth)
