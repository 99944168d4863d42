"""The follow-up API: my follow-ups and overdue ones, a customer's, create/change/complete/cancel/reopen; the
caller's notifications; call-back plans. Validates and calls services and selectors only."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.models import User
from cim.accounts.roles import Perm, has_perm
from cim.activities.follow_up_selectors import (
    callback_plan_get,
    callback_plan_list,
    customer_follow_up_list,
    follow_up_get,
    follow_ups_visible,
    notification_get,
    notification_list,
    team_overdue,
)
from cim.activities.follow_ups import (
    callback_plan_create,
    callback_plan_update,
    callback_plans_run,
    follow_up_cancel,
    follow_up_complete,
    follow_up_create,
    follow_up_reopen,
    follow_up_update,
    notification_read,
    notifications_read_all,
)
from cim.activities.models import FollowUp, Interaction, Priority
from cim.core.pagination import keyset_page
from cim.customers.models import SavedView
from cim.customers.schemas import MAX_ID
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied

router = Router(tags=["follow-ups"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


@contextmanager
def _fields_as(**names: str) -> Iterator[None]:
    """Name a service's errors after the API's fields (`owner` → `owner_id`)."""
    try:
        yield
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError({names.get(k, k): v for k, v in error.message_dict.items()}) from None


def _user(user_id: int | None, field: str) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise ValidationError({field: [_("There is no user with this id.")]})
    return user


class UserRef(Schema):
    id: int
    username: str
    name: str = Field(description="Full name, or the username")

    @staticmethod
    def resolve_name(obj) -> str:
        return str(obj)


class CustomerRef(Schema):
    number: str
    display_name: str


class FollowUpOut(Schema):
    id: int
    customer: CustomerRef
    title: str
    notes: str
    due_at: datetime
    remind_at: datetime | None
    reminded_at: datetime | None
    owner: UserRef
    priority: Priority
    status: FollowUp.Status
    done_at: datetime | None
    plan_id: int | None = Field(description="The call-back plan that made it")
    interaction_id: int | None = Field(description="The interaction that did it")
    created_at: datetime
    overdue: bool

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return obj.status == FollowUp.Status.OPEN and obj.due_at < timezone.now()


class FollowUpPage(Schema):
    items: list[FollowUpOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class FollowUpIn(Schema):
    customer: str = Field(max_length=32, description="The customer's number")
    title: str = Field(min_length=1, max_length=200)
    due_at: datetime = Field(description="ISO 8601; without an offset, in the installation's time zone")
    remind_at: datetime | None = Field(
        None,
        description="When to remind the owner; left out: CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES before due; "
        "null: no reminder",
    )
    owner_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Left out: the customer's owner when they may, else you"
    )
    priority: Priority = Priority.NORMAL
    notes: str = Field("", max_length=5000)


class FollowUpPatch(Schema):
    title: str | None = Field(None, min_length=1, max_length=200)
    notes: str | None = Field(None, max_length=5000)
    due_at: datetime | None = Field(None, description="A new due time moves an unchanged reminder with it")
    remind_at: datetime | None = Field(None, description="null: no reminder")
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Priority | None = None


class CompleteIn(Schema):
    interaction_id: int | None = Field(None, ge=1, le=MAX_ID, description="The interaction that did it")


class NotificationOut(Schema):
    id: int
    title: str
    url: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(Schema):
    items: list[NotificationOut]
    next_cursor: str | None


class ReadAllOut(Schema):
    read: int


class SavedViewRef(Schema):
    id: int
    name: str
    query: str


class CallbackPlanOut(Schema):
    id: int
    name: str
    saved_view: SavedViewRef
    every_days: int
    title: str
    priority: Priority
    default_owner: UserRef
    is_active: bool
    last_run_at: datetime | None
    open_count: int = Field(description="Open follow-ups the plan made")


class CallbackPlanIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    saved_view_id: int = Field(ge=1, le=MAX_ID, description="A saved customer list of yours or a shared one")
    every_days: int = Field(ge=1, le=3650)
    title: str = Field(min_length=1, max_length=200, description="The title of the tasks it makes")
    priority: Priority = Priority.NORMAL
    default_owner_id: int | None = Field(None, ge=1, le=MAX_ID, description="Left out: you")
    is_active: bool = True


class CallbackPlanPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    saved_view_id: int | None = Field(None, ge=1, le=MAX_ID)
    every_days: int | None = Field(None, ge=1, le=3650)
    title: str | None = Field(None, min_length=1, max_length=200)
    priority: Priority | None = None
    default_owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    is_active: bool | None = None


class PlanRunOut(Schema):
    plan_id: int
    name: str
    created: int = Field(description="Follow-ups created")
    error: str = Field(description="Why the plan did not run, if it did not")


# --- follow-ups


@router.get("/follow-ups", response=FollowUpPage, summary="My follow-ups, my overdue ones, or my team's overdue")
def list_follow_ups(
    request,
    view: Literal["mine", "overdue", "team_overdue"] = Query(
        "mine", description="`team_overdue`: everyone's overdue follow-ups on the customers you see"
    ),
    status: Literal["open", "done", "cancelled", "any"] = Query("open", description="For `mine`"),
    owner_id: int | None = Query(None, ge=1, le=MAX_ID, description="For `team_overdue`"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    _require(request, Perm.CUSTOMER_VIEW)
    if view == "team_overdue":
        _require(request, Perm.PERFORMANCE_VIEW)
        follow_ups = team_overdue(user=request.auth, owner_id=owner_id)
    else:
        follow_ups = follow_ups_visible(user=request.auth).filter(owner=request.auth)
        if view == "overdue":
            follow_ups = follow_ups.filter(status=FollowUp.Status.OPEN, due_at__lt=timezone.now())
        elif status != "any":
            follow_ups = follow_ups.filter(status=status)
        follow_ups = follow_ups.order_by("due_at", "id")
    items, next_cursor = keyset_page(follow_ups, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/follow-ups", response={201: FollowUpOut}, summary="Add a follow-up to a customer")
def create_follow_up(request, payload: FollowUpIn):
    _require(request, Perm.ACTIVITY_LOG)
    customer = customer_get(user=request.auth, number=payload.customer)
    reminder = {"remind_at": payload.remind_at} if "remind_at" in payload.model_fields_set else {}
    with _fields_as(owner="owner_id"):
        follow_up = follow_up_create(
            customer=customer,
            title=payload.title,
            due_at=payload.due_at,
            owner=_user(payload.owner_id, "owner_id"),
            priority=payload.priority,
            notes=payload.notes,
            actor=request.auth,
            **reminder,
        )
    return Status(201, follow_up_get(user=request.auth, pk=follow_up.pk))


@router.get("/follow-ups/{follow_up_id}", response=FollowUpOut, summary="A follow-up")
def read_follow_up(request, follow_up_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.CUSTOMER_VIEW)
    return follow_up_get(user=request.auth, pk=follow_up_id)


@router.patch("/follow-ups/{follow_up_id}", response=FollowUpOut, summary="Change an open follow-up")
def update_follow_up(request, payload: FollowUpPatch, follow_up_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.ACTIVITY_LOG)
    follow_up = follow_up_get(user=request.auth, pk=follow_up_id)
    changes = payload.model_dump(exclude_unset=True)
    for name in ("title", "due_at", "priority", "owner_id"):
        if name in changes and changes[name] is None:
            raise ValidationError({name: [_("This field cannot be null.")]})
    if "owner_id" in changes:
        changes["owner"] = _user(changes.pop("owner_id"), "owner_id")
    with _fields_as(owner="owner_id"):
        follow_up_update(follow_up=follow_up, actor=request.auth, **changes)
    return follow_up_get(user=request.auth, pk=follow_up.pk)


@router.post("/follow-ups/{follow_up_id}/complete", response=FollowUpOut, summary="Mark a follow-up done")
def complete_follow_up(request, payload: CompleteIn, follow_up_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.ACTIVITY_LOG)
    follow_up = follow_up_get(user=request.auth, pk=follow_up_id)
    interaction = None
    if payload.interaction_id is not None:
        interaction = Interaction.objects.filter(pk=payload.interaction_id, customer=follow_up.customer_id).first()
        if interaction is None:
            raise ValidationError({"interaction_id": [_("Choose an interaction with this follow-up's customer.")]})
    with _fields_as(interaction="interaction_id"):
        return follow_up_complete(follow_up=follow_up, actor=request.auth, interaction=interaction)


@router.post("/follow-ups/{follow_up_id}/cancel", response=FollowUpOut, summary="Cancel an open follow-up")
def cancel_follow_up(request, follow_up_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.ACTIVITY_LOG)
    return follow_up_cancel(follow_up=follow_up_get(user=request.auth, pk=follow_up_id), actor=request.auth)


@router.post("/follow-ups/{follow_up_id}/reopen", response=FollowUpOut, summary="Open a done or cancelled one again")
def reopen_follow_up(request, follow_up_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.ACTIVITY_LOG)
    return follow_up_reopen(follow_up=follow_up_get(user=request.auth, pk=follow_up_id), actor=request.auth)


@router.get("/customers/{number}/follow-ups", response=FollowUpPage, summary="A customer's follow-ups")
def customer_follow_ups(
    request,
    number: str,
    status: Literal["open", "done", "cancelled", "any"] = "open",
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = customer_get(user=request.auth, number=number)
    follow_ups = customer_follow_up_list(customer=customer, status=None if status == "any" else status)
    items, next_cursor = keyset_page(follow_ups, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


# --- notifications


@router.get("/notifications", response=NotificationPage, tags=["notifications"], summary="My notifications")
def list_notifications(request, unread: bool = False, cursor: str | None = None, limit: int = Query(50, ge=1, le=500)):
    items, next_cursor = keyset_page(
        notification_list(user=request.auth, unread_only=unread), cursor=cursor, limit=limit
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/notifications/read-all", response=ReadAllOut, tags=["notifications"], summary="Mark all read")
def read_all_notifications(request):
    return {"read": notifications_read_all(actor=request.auth)}


@router.post(
    "/notifications/{notification_id}/read",
    response=NotificationOut,
    tags=["notifications"],
    summary="Mark a notification read",
)
def read_notification(request, notification_id: int = Path(..., ge=1, le=MAX_ID)):
    notification = notification_get(user=request.auth, pk=notification_id)
    return notification_read(notification=notification, actor=request.auth)


# --- call-back plans


def _saved_view(view_id: int) -> SavedView:
    view = SavedView.objects.filter(pk=view_id).first()
    if view is None:
        raise ValidationError({"saved_view_id": [_("There is no saved view with this id.")]})
    return view


PLAN_FIELDS = {"saved_view": "saved_view_id", "default_owner": "default_owner_id"}


@router.get("/callback-plans", response=list[CallbackPlanOut], tags=["call-back plans"], summary="Call-back plans")
def list_callback_plans(request):
    _require(request, Perm.SETTINGS_MANAGE)
    return list(callback_plan_list())


@router.post(
    "/callback-plans",
    response={201: CallbackPlanOut},
    tags=["call-back plans"],
    summary="Plan recurring call-backs for a saved customer list",
)
def create_callback_plan(request, payload: CallbackPlanIn):
    _require(request, Perm.SETTINGS_MANAGE)
    with _fields_as(**PLAN_FIELDS):
        plan = callback_plan_create(
            name=payload.name,
            saved_view=_saved_view(payload.saved_view_id),
            every_days=payload.every_days,
            title=payload.title,
            priority=payload.priority,
            default_owner=_user(payload.default_owner_id, "default_owner_id"),
            is_active=payload.is_active,
            actor=request.auth,
        )
    return Status(201, callback_plan_get(pk=plan.pk))


# Before `/callback-plans/{plan_id}`, which would otherwise take `run` for an id.
@router.post(
    "/callback-plans/run",
    response=list[PlanRunOut],
    tags=["call-back plans"],
    summary="Run every active plan now (the worker does it every hour)",
)
def run_callback_plans(request):
    _require(request, Perm.SETTINGS_MANAGE)
    return callback_plans_run(actor=request.auth)


@router.patch("/callback-plans/{plan_id}", response=CallbackPlanOut, tags=["call-back plans"], summary="Change a plan")
def update_callback_plan(request, payload: CallbackPlanPatch, plan_id: int = Path(..., ge=1, le=MAX_ID)):
    _require(request, Perm.SETTINGS_MANAGE)
    plan = callback_plan_get(pk=plan_id)
    changes = payload.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationError({name: [_("This field cannot be null.")]})
    if "saved_view_id" in changes:
        changes["saved_view"] = _saved_view(changes.pop("saved_view_id"))
    if "default_owner_id" in changes:
        changes["default_owner"] = _user(changes.pop("default_owner_id"), "default_owner_id")
    with _fields_as(**PLAN_FIELDS):
        callback_plan_update(plan=plan, actor=request.auth, **changes)
    return callback_plan_get(pk=plan.pk)
