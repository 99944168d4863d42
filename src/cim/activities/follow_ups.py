"""Every write of follow-ups (跟进), their reminders, staff notifications and call-back plans (回访).

Each write validates, changes and audits in one transaction. The two jobs the worker runs, reminders and call-back
plans, are safe to run late, twice, or in two workers at once: each does its work once.
"""

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.activities.follow_up_selectors import (
    callback_plan_owners,
    end_of_today,
    follow_up_default_owner,
    follow_up_owners,
)
from cim.activities.mentions import mentions_check, mentions_notify
from cim.activities.models import CallbackPlan, FollowUp, Interaction, Notification, Priority
from cim.audit.services import audit_record, audit_record_bulk
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, SavedView
from cim.customers.services import PermissionDenied, _require
from cim.quality.normalize import clean_paragraphs, clean_text

logger = logging.getLogger(__name__)

Status = FollowUp.Status
BATCH = 1000
FOLLOW_UP_FIELDS = ("title", "notes", "due_at", "remind_at", "owner", "priority")
PLAN_FIELDS = ("name", "saved_view", "every_days", "title", "priority", "default_owner", "is_active")
MAX_EVERY_DAYS = 3650


def follow_up_url(follow_up: FollowUp) -> str:
    return reverse("activities:follow_up", args=[follow_up.pk])


def _aware(value: datetime) -> datetime:
    """A time as given; one without a zone (from the API) is read in the installation's time zone."""
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _title(value: str, errors: dict[str, list[str]]) -> str:
    title = clean_text(value)
    if not title:
        errors["title"] = [_("Enter a title.")]
    elif len(title) > 200:
        errors["title"] = [_("Enter at most %(n)s characters.") % {"n": 200}]
    return title


def _priority(value: str, errors: dict[str, list[str]]) -> str:
    if value not in Priority.values:
        errors["priority"] = [_("Select one of: %(choices)s.") % {"choices": ", ".join(Priority.values)}]
    return value


def _owner_error(customer: Customer, owner) -> list[str] | None:
    if owner is None:
        return [_("Choose who owns this follow-up.")]
    if not follow_up_owners(customer=customer).filter(pk=owner.pk).exists():
        return [
            _("%(user)s cannot own this follow-up: an owner is active, logs activities and sees the customer.")
            % {"user": owner}
        ]
    return None


def _notify_assigned(follow_up: FollowUp, actor) -> None:
    if actor is None or follow_up.owner_id == actor.pk:
        return
    # Notifications are stored as text: written in the installation's language, whoever caused them.
    with translation.override(settings.LANGUAGE_CODE):
        title = _("%(actor)s gave you a follow-up: %(title)s") % {"actor": actor, "title": follow_up.title}
    Notification.objects.create(user=follow_up.owner, title=Truncator(title).chars(200), url=follow_up_url(follow_up))


def follow_up_create(
    *,
    customer: Customer,
    title: str,
    due_at: datetime,
    actor,
    owner=None,
    priority: str = Priority.NORMAL,
    notes: str = "",
    remind_at: datetime | Literal["default"] | None = "default",
) -> FollowUp:
    """Give someone a task for a customer by a time. The owner defaults to the customer's owner, else the actor;
    `remind_at` defaults to CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES before the due time; None: no reminder."""
    _require(actor, Perm.ACTIVITY_LOG)
    if customer.merged_into_id or customer.is_archived:
        raise ValidationError({"customer": [_("Follow-ups can only be added to a customer that is not archived.")]})
    errors: dict[str, list[str]] = {}
    title = _title(title, errors)
    priority = _priority(priority, errors)
    due_at = _aware(due_at)
    if remind_at == "default":
        remind_at = due_at - timedelta(minutes=settings.CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES)
    elif remind_at is not None:
        remind_at = _aware(remind_at)
        if remind_at > due_at:
            errors["remind_at"] = [_("Remind before the due time, not after it.")]
    owner = owner or follow_up_default_owner(customer=customer, actor=actor)
    if owner_error := _owner_error(customer, owner):
        errors["owner"] = owner_error
    try:
        mentioned = mentions_check(text=f"{title}\n{notes}", customer=customer, field="notes")
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        follow_up = FollowUp.objects.create(
            customer=customer,
            title=title,
            notes=clean_paragraphs(notes),
            due_at=due_at,
            remind_at=remind_at,
            owner=owner,
            priority=priority,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="follow_up.create",
            target=follow_up,
            fields=["customer", "title", "notes", "due_at", "remind_at", "owner", "priority"],
            note=f"customer:{customer.pk}",
        )
        _notify_assigned(follow_up, actor)
        # The owner hears of the follow-up itself; the others mentioned in it are told too.
        others = [user for user in mentioned if user.pk != follow_up.owner_id]
        mentions_notify(users=others, customer=customer, actor=actor, target=follow_up)
    return follow_up


def follow_up_update(*, follow_up: FollowUp, actor, **changes) -> FollowUp:
    """Change the fields given (of FOLLOW_UP_FIELDS) of an open follow-up. A new due time moves the reminder with
    it; a new reminder time is reminded again. `remind_at=None`: no reminder."""
    _require(actor, Perm.ACTIVITY_LOG)
    if unknown := set(changes) - set(FOLLOW_UP_FIELDS):
        raise TypeError(f"not editable: {sorted(unknown)}")
    if follow_up.status != Status.OPEN:
        raise ValidationError({"status": [_("Reopen this follow-up to change it.")]})
    errors: dict[str, list[str]] = {}
    values: dict = {}
    if "title" in changes:
        values["title"] = _title(changes["title"], errors)
    if "notes" in changes:
        values["notes"] = clean_paragraphs(changes["notes"])
    if "priority" in changes:
        values["priority"] = _priority(changes["priority"], errors)
    if "due_at" in changes:
        values["due_at"] = _aware(changes["due_at"])
    if "owner" in changes:
        if owner_error := _owner_error(follow_up.customer, changes["owner"]):
            errors["owner"] = owner_error
        else:
            values["owner_id"] = changes["owner"].pk
    due_at = values.get("due_at", follow_up.due_at)
    if "remind_at" in changes:
        values["remind_at"] = _aware(changes["remind_at"]) if changes["remind_at"] else None
    elif "due_at" in values and follow_up.remind_at is not None:
        values["remind_at"] = follow_up.remind_at + (due_at - follow_up.due_at)
    if values.get("remind_at") and values["remind_at"] > due_at:
        errors["remind_at"] = [_("Remind before the due time, not after it.")]
    if errors:
        raise ValidationError(errors)
    changed = {name: (getattr(follow_up, name), new) for name, new in values.items() if getattr(follow_up, name) != new}
    if not changed:
        return follow_up
    for name, (_old, new) in changed.items():
        setattr(follow_up, name, new)
    update_fields = list(changed)
    if "remind_at" in changed:
        follow_up.reminded_at = None
        update_fields.append("reminded_at")
    with transaction.atomic():
        follow_up.save(update_fields=update_fields)
        audit_record(actor=actor, action="follow_up.update", target=follow_up, changes=changed)
        if "owner_id" in changed:
            _notify_assigned(follow_up, actor)
    return follow_up


def _transition(follow_up: FollowUp, *, actor, action: str, allowed_from: set[str], values: dict) -> bool:
    """Move the follow-up to a new status with one conditional UPDATE, so two people clicking at once change it
    once. False when it was not in a status it may move from (it is reloaded either way)."""
    with transaction.atomic():
        moved = FollowUp.objects.filter(pk=follow_up.pk, status__in=allowed_from).update(**values)
        old = {name: getattr(follow_up, name) for name in values}
        follow_up.refresh_from_db()
        if moved:
            changes = {name: (old[name], getattr(follow_up, name)) for name in values if old[name] != values[name]}
            audit_record(actor=actor, action=action, target=follow_up, fields=list(values), changes=changes)
    return bool(moved)


def follow_up_complete(*, follow_up: FollowUp, actor, interaction: Interaction | None = None) -> FollowUp:
    """Mark a follow-up done, optionally naming the interaction (the call, the visit) that did it."""
    _require(actor, Perm.ACTIVITY_LOG)
    if interaction is not None and interaction.customer_id != follow_up.customer_id:
        raise ValidationError({"interaction": [_("Choose an interaction with this follow-up's customer.")]})
    values = {"status": Status.DONE, "done_at": timezone.now()}
    if interaction is not None:
        values["interaction_id"] = interaction.pk
    done = _transition(follow_up, actor=actor, action="follow_up.complete", allowed_from={Status.OPEN}, values=values)
    if not done and follow_up.status == Status.CANCELLED:
        raise ValidationError({"status": [_("This follow-up was cancelled; reopen it to complete it.")]})
    return follow_up


def follow_up_cancel(*, follow_up: FollowUp, actor) -> FollowUp:
    """Cancel an open follow-up: it is no longer needed."""
    _require(actor, Perm.ACTIVITY_LOG)
    values = {"status": Status.CANCELLED, "done_at": None}
    cancelled = _transition(
        follow_up, actor=actor, action="follow_up.cancel", allowed_from={Status.OPEN}, values=values
    )
    if not cancelled and follow_up.status == Status.DONE:
        raise ValidationError({"status": [_("This follow-up is done; reopen it to cancel it.")]})
    return follow_up


def follow_up_reopen(*, follow_up: FollowUp, actor) -> FollowUp:
    """Open a done or cancelled follow-up again; the interaction it named is no longer what did it."""
    _require(actor, Perm.ACTIVITY_LOG)
    values = {"status": Status.OPEN, "done_at": None, "interaction_id": None}
    _transition(
        follow_up, actor=actor, action="follow_up.reopen", allowed_from={Status.DONE, Status.CANCELLED}, values=values
    )
    return follow_up


# --- reminders


@dataclass(frozen=True)
class ReminderRun:
    follow_ups: int  # reminded now
    people: int  # owners notified (one notification and one email each, however many follow-ups)
    emails: int


def _claim(ids: list[int], now: datetime) -> list[int]:
    """Mark these follow-ups reminded and return those this call marked. One conditional UPDATE … RETURNING (both
    SQLite and PostgreSQL have it) claims and names the rows at once: a row another worker claimed first is
    skipped, so each reminder goes out once."""
    q = connection.ops.quote_name
    table, column = q(FollowUp._meta.db_table), q(FollowUp._meta.get_field("reminded_at").column)
    status, pk = q(FollowUp._meta.get_field("status").column), q(FollowUp._meta.pk.column)
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE {pk} IN ({placeholders}) AND {column} IS NULL AND {status} = %s "
            f"RETURNING {pk}",
            [connection.ops.adapt_datetimefield_value(now), *ids, Status.OPEN],
        )
        return [row[0] for row in cursor.fetchall()]


def _due_text(follow_up: FollowUp) -> str:
    return f"{timezone.localtime(follow_up.due_at):%Y-%m-%d %H:%M}"


def _reminder_notification(owner, follow_ups: list[FollowUp]) -> Notification:
    if len(follow_ups) == 1:
        follow_up = follow_ups[0]
        title = _("Due %(due)s: %(title)s (%(customer)s)") % {
            "due": _due_text(follow_up),
            "title": follow_up.title,
            "customer": follow_up.customer.display_name,
        }
        url = follow_up_url(follow_up)
    else:
        title = _("%(count)s follow-ups are due soon") % {"count": len(follow_ups)}
        url = reverse("activities:follow_ups") + "?tab=today"
    return Notification(user=owner, title=Truncator(title).chars(200), url=url)


def _reminder_email(owner, follow_ups: list[FollowUp]) -> EmailMessage:
    site = settings.CIM_SITE_URL.rstrip("/")
    lines = [_("Hello %(name)s,") % {"name": owner}, "", _("These follow-ups are due soon:"), ""]
    for follow_up in follow_ups:
        lines.append(
            f"- {_due_text(follow_up)} · {follow_up.title} · {follow_up.customer.display_name} "
            f"({follow_up.customer.number}) · {follow_up.get_priority_display()}"
        )
        lines.append(f"  {site}{follow_up_url(follow_up)}")
    lines += ["", _("All your follow-ups: %(link)s") % {"link": site + reverse("activities:follow_ups")}]
    if len(follow_ups) == 1:
        subject = _("Follow-up due %(due)s: %(title)s") % {
            "due": _due_text(follow_ups[0]),
            "title": follow_ups[0].title,
        }
    else:
        subject = _("%(count)s follow-ups are due soon") % {"count": len(follow_ups)}
    return EmailMessage(subject=subject, body="\n".join(lines), to=[owner.email])


def _send(messages: list[EmailMessage]) -> None:
    """Send the reminder emails; a mail server that fails is logged: the reminders stay in the app."""
    try:
        get_connection().send_messages(messages)
    except Exception:
        logger.exception("follow-up reminders: %s email(s) could not be sent", len(messages))


def follow_up_reminders_send(*, now: datetime | None = None) -> ReminderRun:
    """Remind the owners of open follow-ups whose reminder time has come: one notification in the app and one
    email per owner, listing their follow-ups. Each follow-up is reminded once, however often this runs."""
    now = now or timezone.now()
    reminded, people, emails = 0, set(), 0
    due = FollowUp.objects.filter(status=Status.OPEN, reminded_at__isnull=True, remind_at__lte=now)
    while ids := list(due.order_by("remind_at", "id").values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            claimed = _claim(ids, now)
            if not claimed:
                continue
            rows = FollowUp.objects.filter(pk__in=claimed).select_related("customer", "owner").order_by("owner_id")
            by_owner = [
                (owner, sorted(items, key=lambda f: (f.due_at, f.pk)))
                for owner, items in ((o, list(i)) for o, i in itertools.groupby(rows, key=lambda f: f.owner))
            ]
            with translation.override(settings.LANGUAGE_CODE):
                Notification.objects.bulk_create(_reminder_notification(o, items) for o, items in by_owner)
                messages = [_reminder_email(o, items) for o, items in by_owner if o.is_active and o.email]
            audit_record_bulk(
                actor=None,
                action="follow_up.remind",
                target_type=FollowUp._meta.label_lower,
                target_ids=claimed,
                fields=["reminded_at"],
            )
            if messages:
                transaction.on_commit(partial(_send, messages))
        reminded += len(claimed)
        people |= {owner.pk for owner, _items in by_owner}
        emails += len(messages)
    return ReminderRun(follow_ups=reminded, people=len(people), emails=emails)


# --- notifications


def notification_read(*, notification: Notification, actor) -> Notification:
    """Mark one of the actor's own notifications read."""
    if actor is None or notification.user_id != actor.pk:
        raise PermissionDenied("notification.read")
    if notification.read_at is not None:
        return notification
    with transaction.atomic():
        now = timezone.now()
        if Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now):
            audit_record(actor=actor, action="notification.read", target=notification, fields=["read_at"])
    notification.refresh_from_db(fields=["read_at"])
    return notification


def notifications_read_all(*, actor) -> int:
    """Mark every unread notification of the actor read; returns how many there were."""
    with transaction.atomic():
        count = Notification.objects.filter(user=actor, read_at__isnull=True).update(read_at=timezone.now())
        if count:
            audit_record(
                actor=actor,
                action="notification.read_all",
                target=actor,
                fields=["read_at"],
                note=f"{count} notifications",
            )
    return count


# --- call-back plans


def _plan_filters(saved_view: SavedView) -> tuple[CustomerFilter, list[str]]:
    """The customer filters of a plan's saved view, and what in them is no longer valid."""
    # The list page's own parser, so a plan reads its view exactly as the list does. Imported here: the customer
    # pages import this app's modules, and a module-level import would close the circle.
    from cim.customers.views import parse_filters

    return parse_filters(QueryDict(saved_view.query))


def _plan_values(changes: dict, actor, current: CallbackPlan | None) -> dict:
    """Cleaned plan fields of `changes`; raises ValidationError with every problem."""
    errors: dict[str, list[str]] = {}
    values = dict(changes)
    if "name" in changes:
        values["name"] = clean_text(changes["name"])
        if not values["name"] or len(values["name"]) > 100:
            errors["name"] = [_("A name has 1 to 100 characters.")]
        elif CallbackPlan.objects.filter(name=values["name"]).exclude(pk=current.pk if current else None).exists():
            errors["name"] = [_("There is already a call-back plan with this name.")]
    if "title" in changes:
        values["title"] = _title(changes["title"], errors)
    if "priority" in changes:
        _priority(changes["priority"], errors)
    if "every_days" in changes and not 1 <= int(changes["every_days"]) <= MAX_EVERY_DAYS:
        errors["every_days"] = [_("Enter a number of days from 1 to %(n)s.") % {"n": MAX_EVERY_DAYS}]
    if "saved_view" in changes:
        view = changes["saved_view"]
        if view is None or not (view.is_shared or view.user_id == actor.pk):
            errors["saved_view"] = [_("Choose one of your saved views or a shared one.")]
        elif problems := _plan_filters(view)[1]:
            errors["saved_view"] = problems
    if "default_owner" in changes:
        owner = changes["default_owner"]
        if owner is None or not callback_plan_owners().filter(pk=owner.pk).exists():
            errors["default_owner"] = [_("Choose an active user whose role logs activities.")]
    if errors:
        raise ValidationError(errors)
    return values


def callback_plan_create(
    *,
    name: str,
    saved_view: SavedView,
    every_days: int,
    title: str,
    actor,
    priority: str = Priority.NORMAL,
    default_owner=None,
    is_active: bool = True,
) -> CallbackPlan:
    """Plan recurring call-backs for the customers of a saved view, as the actor sees them. The default owner
    (the actor when not given) takes those of customers without an owner who may."""
    _require(actor, Perm.SETTINGS_MANAGE)
    if actor is None:
        raise PermissionDenied("callback_plan.create")
    fields = {
        "name": name,
        "saved_view": saved_view,
        "every_days": every_days,
        "title": title,
        "priority": priority,
        "default_owner": default_owner or actor,
        "is_active": is_active,
    }
    values = _plan_values(fields, actor, None)
    try:
        with transaction.atomic():
            plan = CallbackPlan.objects.create(**values, created_by=actor)
            audit_record(actor=actor, action="callback_plan.create", target=plan, fields=list(values))
    except IntegrityError:
        raise ValidationError({"name": [_("There is already a call-back plan with this name.")]}) from None
    return plan


def callback_plan_update(*, plan: CallbackPlan, actor, **changes) -> CallbackPlan:
    """Change the fields given (of PLAN_FIELDS) of a call-back plan."""
    _require(actor, Perm.SETTINGS_MANAGE)
    if unknown := set(changes) - set(PLAN_FIELDS):
        raise TypeError(f"not editable: {sorted(unknown)}")
    values = _plan_values(changes, actor, plan)
    attnames = {name: (f"{name}_id" if name in ("saved_view", "default_owner") else name) for name in values}
    news = {
        attnames[name]: (value.pk if attnames[name] != name and value is not None else value)
        for name, value in values.items()
    }
    changed = {name: (getattr(plan, name), new) for name, new in news.items() if getattr(plan, name) != new}
    if not changed:
        return plan
    for name, (_old, new) in changed.items():
        setattr(plan, name, new)
    try:
        with transaction.atomic():
            plan.save(update_fields=list(changed))
            audit_record(actor=actor, action="callback_plan.update", target=plan, changes=changed)
    except IntegrityError:
        raise ValidationError({"name": [_("There is already a call-back plan with this name.")]}) from None
    plan.refresh_from_db()
    return plan


@dataclass(frozen=True)
class PlanRun:
    plan_id: int
    name: str
    created: int
    error: str = ""


def callback_plans_run(*, actor=None, now: datetime | None = None) -> list[PlanRun]:
    """Run every active call-back plan now (the worker does it every hour; `actor` None is the worker)."""
    if actor is not None:
        _require(actor, Perm.SETTINGS_MANAGE)
    now = now or timezone.now()
    ids = CallbackPlan.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    return [_plan_run(plan_id, actor=actor, now=now) for plan_id in ids]


def _plan_run(plan_id: int, *, actor, now: datetime) -> PlanRun:
    """One plan: a follow-up for each customer of its saved view (as its creator sees them) without an open one
    from the plan and without one from the plan created in the last `every_days`. The plan's row is locked for
    the run, so a second run waits and then finds nothing left to do."""
    with transaction.atomic():
        plan = CallbackPlan.objects.select_for_update().filter(pk=plan_id, is_active=True).first()
        if plan is None:
            return PlanRun(plan_id=plan_id, name="", created=0)
        filters, problems = _plan_filters(plan.saved_view)
        owner_ids = set(callback_plan_owners().values_list("pk", flat=True))
        error = ""
        if problems:
            error = " ".join(problems)
        elif plan.default_owner_id not in owner_ids:
            error = _("The default owner can no longer take follow-ups.")
        elif plan.created_by is None or not plan.created_by.is_active:
            error = _("The plan's creator is no longer active: the plan sees no customers.")
        if error:
            logger.warning("call-back plan %s (%s) not run: %s", plan.pk, plan.name, error)
            return PlanRun(plan_id=plan.pk, name=plan.name, created=0, error=error)
        recent = FollowUp.objects.filter(plan=plan, customer=OuterRef("pk")).filter(
            Q(status=Status.OPEN) | Q(created_at__gt=now - timedelta(days=plan.every_days))
        )
        customers = filters.apply(Customer.objects.visible_to(plan.created_by))
        # Archived and merged customers get no tasks, even from a view that lists them.
        due = customers.exclude(status=Customer.Status.ARCHIVED).filter(~Exists(recent)).order_by()
        # Due by the end of the day they are made; reminded at once, in one message per owner.
        due_at = end_of_today(now) - timedelta(minutes=1)
        created, last = 0, 0
        while rows := list(due.filter(pk__gt=last).order_by("pk").values_list("pk", "owner_id")[:BATCH]):
            last = rows[-1][0]
            made = FollowUp.objects.bulk_create(
                FollowUp(
                    customer_id=customer_id,
                    title=plan.title,
                    due_at=due_at,
                    remind_at=now,
                    owner_id=owner_id if owner_id in owner_ids else plan.default_owner_id,
                    priority=plan.priority,
                    plan=plan,
                    created_by=actor,
                )
                for customer_id, owner_id in rows
            )
            audit_record_bulk(
                actor=actor,
                action="follow_up.create",
                target_type=FollowUp._meta.label_lower,
                target_ids=[f.pk for f in made],
                fields=["customer", "title", "due_at", "remind_at", "owner", "priority", "plan"],
                note=f"callback_plan:{plan.pk}",
            )
            created += len(made)
        plan.last_run_at = now
        plan.save(update_fields=["last_run_at"])
        audit_record(
            actor=actor, action="callback_plan.run", target=plan, fields=["last_run_at"], note=f"{created} follow-ups"
        )
    return PlanRun(plan_id=plan.pk, name=plan.name, created=created)
