"""Every write to tickets and SLA policies. Each validates, changes, audits in one transaction; emails go out after
it commits (DESIGN §3.2)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Least
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import Team, User
from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.service import choices as c
from cim.service import notifications
from cim.service.business_hours import sla_due, sla_minutes_between
from cim.service.models import MAX_ESCALATION_LEVEL, SlaPolicy, Ticket, TicketMessage, TicketSequence
from cim.service.sla import resolution_overdue, response_overdue
from cim.service.surveys import survey_send_after
from cim.service.text import clean_body

# Targets in business minutes (a business day is nine hours by default); the first migration seeds the same.
DEFAULT_POLICIES = {
    c.Priority.URGENT: (30, 240),
    c.Priority.HIGH: (60, 540),
    c.Priority.NORMAL: (240, 1620),
    c.Priority.LOW: (480, 2700),
}
MAX_SUBJECT = 200
MAX_BODY = 20000
MAX_REASON = 500
# Resolutions that ask nobody for their satisfaction: there was no real request to be satisfied with.
NO_SURVEY = (c.ResolutionCode.DUPLICATE, c.ResolutionCode.INVALID)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()  # "leave as it is", where None means "nobody"


def _require(actor, perm: str) -> None:
    if actor is not None and not has_perm(actor, perm):
        raise PermissionDenied(perm)


def _one_line(raw: str | None, field: str, limit: int, *, required: bool = True) -> str:
    text = " ".join(clean_body(raw).split())
    if required and not text:
        raise ValidationError({field: [_("This field is required.")]})
    if len(text) > limit:
        raise ValidationError({field: [_("Enter at most %(n)s characters.") % {"n": limit}]})
    return text


def _choice(value: str, choices, field: str) -> str:
    if value not in choices.values:
        raise ValidationError({field: [_("Select a valid choice.")]})
    return value


def can_handle_tickets(user) -> bool:
    return has_perm(user, Perm.TICKET_HANDLE)


def _check_assignee(assignee: User | None) -> None:
    if assignee is not None and not can_handle_tickets(assignee):
        raise ValidationError({"assignee": [_("%(user)s cannot handle tickets.") % {"user": assignee}]})


def sla_policy_for(priority: str) -> SlaPolicy:
    """The priority's policy; the built-in targets if an administrator's row is missing."""
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is None:
        response, resolution = DEFAULT_POLICIES[priority]
        policy = SlaPolicy(priority=priority, first_response_minutes=response, resolution_minutes=resolution)
    return policy


def _next_number(opened_at: datetime) -> str:
    year = timezone.localtime(opened_at).year
    sequence, _created = TicketSequence.objects.select_for_update().get_or_create(year=year)
    TicketSequence.objects.filter(pk=sequence.pk).update(last=F("last") + 1)
    sequence.refresh_from_db(fields=["last"])
    return f"T-{year}-{sequence.last:06d}"


def _notify(function, **kwargs) -> None:
    transaction.on_commit(partial(function, **kwargs))


def ticket_create(
    *,
    customer: Customer,
    subject: str,
    channel: str,
    actor,
    description: str = "",
    category: str = c.Category.OTHER,
    priority: str = c.Priority.NORMAL,
    assignee: User | None = None,
    team: Team | _Unset | None = UNSET,
    opened_at: datetime | None = None,
) -> Ticket:
    """Open a ticket for a customer. Its SLA deadlines follow its priority's policy from `opened_at` (now when
    not given: when the customer got in touch). The team is the assignee's, else the creator's when they handle
    tickets, unless given."""
    _require(actor, Perm.TICKET_HANDLE)
    now = timezone.now()
    opened_at = opened_at or now
    if opened_at > now + timedelta(minutes=5):
        raise ValidationError({"opened_at": [_("A ticket cannot be opened in the future.")]})
    if customer.merged_into_id:
        raise ValidationError({"customer": [_("This customer was merged into another; open the ticket there.")]})
    description = clean_body(description)
    if len(description) > MAX_BODY:
        raise ValidationError({"description": [_("Enter at most %(n)s characters.") % {"n": MAX_BODY}]})
    _check_assignee(assignee)
    if team is UNSET:
        team = (assignee.team if assignee else None) or (actor.team if can_handle_tickets(actor) else None)
    policy = sla_policy_for(_choice(priority, c.Priority, "priority"))
    with transaction.atomic():
        ticket = Ticket.objects.create(
            number=_next_number(opened_at),
            customer=customer,
            subject=_one_line(subject, "subject", MAX_SUBJECT),
            description=description,
            channel=_choice(channel, c.Channel, "channel"),
            category=_choice(category, c.Category, "category"),
            priority=priority,
            assignee=assignee,
            team=team,
            sla_business_hours=policy.business_hours_only,
            first_response_due=sla_due(
                opened_at, policy.first_response_minutes, business_hours=policy.business_hours_only
            ),
            resolution_due=sla_due(opened_at, policy.resolution_minutes, business_hours=policy.business_hours_only),
            created_by=actor if actor is not None and actor.is_authenticated else None,
            created_at=opened_at,
        )
        audit_record(
            actor=actor,
            action="ticket.create",
            target=ticket,
            fields=["customer", "channel", "category", "priority", "assignee", "team", "status"],
        )
        event_publish("ticket.created", customer_id=customer.pk, data={"ticket": ticket.pk})
        if assignee is not None and assignee != actor:
            _notify(notifications.assignment, ticket_id=ticket.pk)
    return ticket


def _locked(ticket: Ticket) -> Ticket:
    """The ticket's row, locked for this transaction and read afresh, so concurrent changes queue up."""
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _refresh(ticket: Ticket, current: Ticket) -> Ticket:
    for field in Ticket._meta.concrete_fields:
        setattr(ticket, field.attname, getattr(current, field.attname))
    return ticket


def _message(ticket: Ticket, kind: str, body: str, actor) -> TicketMessage:
    body = clean_body(body)
    if not body:
        raise ValidationError({"body": [_("Write something first.")]})
    if len(body) > MAX_BODY:
        raise ValidationError({"body": [_("Enter at most %(n)s characters.") % {"n": MAX_BODY}]})
    return TicketMessage.objects.create(
        ticket=ticket, kind=kind, body=body, author=actor if actor is not None and actor.is_authenticated else None
    )


def ticket_reply(
    *,
    ticket: Ticket,
    body: str,
    actor,
    email_customer: bool = True,
    status: str | None = None,
    resolution_code: str = "",
) -> TicketMessage:
    """Reply to the customer: stops the first-response clock, moves a new or reopened ticket into progress (or to
    `status`), and emails the reply to the customer's primary address when asked to and there is one."""
    _require(actor, Perm.TICKET_HANDLE)
    with transaction.atomic():
        current = _locked(ticket)
        if current.status == c.Status.CLOSED:
            raise ValidationError({"body": [_("This ticket is closed; open a new one to write to the customer.")]})
        message = _message(current, c.MessageKind.REPLY, body, actor)
        fields = []
        if current.first_responded_at is None:
            current.first_responded_at = message.created_at
            current.save(update_fields=["first_responded_at", "updated_at"])
            fields.append("first_responded_at")
        audit_record(actor=actor, action="ticket.reply", target=current, fields=["messages", *fields])
        target = status or (c.Status.IN_PROGRESS if current.status in (c.Status.NEW, c.Status.REOPENED) else None)
        if target and target != current.status:
            _transition(current, target, actor=actor, resolution_code=resolution_code)
        if email_customer and current.customer.emails.filter(is_primary=True).exists():
            _notify(notifications.reply_to_customer, message_id=message.pk)
    _refresh(ticket, current)
    return message


def ticket_note(*, ticket: Ticket, body: str, actor) -> TicketMessage:
    """An internal note: seen by staff only, never sent, and no response to the customer."""
    _require(actor, Perm.TICKET_HANDLE)
    with transaction.atomic():
        message = _message(_locked(ticket), c.MessageKind.NOTE, body, actor)
        audit_record(actor=actor, action="ticket.note", target=ticket, fields=["messages"])
    return message


def _resume(ticket: Ticket, now: datetime) -> None:
    """Leave the waiting state: the resolution deadline moves on by the business time the clock stood still,
    unless it was already missed when the ticket started waiting."""
    paused_at, ticket.sla_paused_at = ticket.sla_paused_at, None
    if paused_at is not None and paused_at < ticket.resolution_due:
        left = sla_minutes_between(paused_at, ticket.resolution_due, business_hours=ticket.sla_business_hours)
        ticket.resolution_due = sla_due(now, left, business_hours=ticket.sla_business_hours)


def _transition(ticket: Ticket, status: str, *, actor, resolution_code: str = "") -> None:
    """Move a locked ticket to `status`, keeping the SLA clocks right. Raises ValidationError for a move the
    workflow does not allow."""
    old = ticket.status
    if status not in c.Status.values:
        raise ValidationError({"status": [_("Select a valid choice.")]})
    if status not in c.TRANSITIONS[old]:
        raise ValidationError(
            {
                "status": [
                    _("A ticket that is “%(old)s” cannot become “%(new)s”.")
                    % {"old": c.Status(old).label, "new": c.Status(status).label}
                ]
            }
        )
    settles = status == c.Status.RESOLVED or (status == c.Status.CLOSED and ticket.resolved_at is None)
    if settles and resolution_code not in c.ResolutionCode.values:
        raise ValidationError({"resolution_code": [_("Choose how the ticket was resolved.")]})
    now = timezone.now()
    before = {name: getattr(ticket, name) for name in ("resolution_due", "resolution_code")}
    if old == c.Status.WAITING:
        _resume(ticket, now)
    if status == c.Status.WAITING:
        ticket.sla_paused_at = now
    if settles:
        ticket.resolved_at = now
        ticket.resolution_code = resolution_code
        # Resolving answers the customer too: the first-response clock stops if it still ran.
        ticket.first_responded_at = ticket.first_responded_at or now
    if status == c.Status.CLOSED:
        ticket.closed_at = now
    if status == c.Status.REOPENED:
        if ticket.resolved_at < ticket.resolution_due:
            left = sla_minutes_between(
                ticket.resolved_at, ticket.resolution_due, business_hours=ticket.sla_business_hours
            )
            ticket.resolution_due = sla_due(now, left, business_hours=ticket.sla_business_hours)
        ticket.resolved_at = None
        ticket.resolution_code = ""
        ticket.reopened_count += 1
    ticket.status = status
    ticket.save()
    changes = {"status": (old, status)}
    changes.update({k: (v, getattr(ticket, k)) for k, v in before.items() if v != getattr(ticket, k)})
    audit_record(actor=actor, action="ticket.transition", target=ticket, changes=changes)
    if status == c.Status.RESOLVED:
        event_publish("ticket.resolved", customer_id=ticket.customer_id, data={"ticket": ticket.pk})
    if status == c.Status.RESOLVED and resolution_code not in NO_SURVEY:
        survey_send_after(ticket=ticket, actor=actor)


def ticket_transition(*, ticket: Ticket, status: str, actor, resolution_code: str = "") -> Ticket:
    """Move a ticket through the workflow (see `choices.TRANSITIONS`). Resolving, or closing a ticket never
    resolved, needs a resolution code. Resolving sends a satisfaction survey (CIM_SURVEY_AFTER_TICKET)."""
    _require(actor, Perm.TICKET_HANDLE)
    with transaction.atomic():
        current = _locked(ticket)
        if current.status != status:
            _transition(current, status, actor=actor, resolution_code=resolution_code)
    return _refresh(ticket, current)


def ticket_assign(*, ticket: Ticket, assignee: User | None, actor, team: Team | _Unset | None = UNSET) -> Ticket:
    """Give a ticket to a person (None: nobody) and a team; the team follows the assignee unless given."""
    _require(actor, Perm.TICKET_HANDLE)
    _check_assignee(assignee)
    with transaction.atomic():
        current = _locked(ticket)
        if current.status == c.Status.CLOSED:
            raise ValidationError({"assignee": [_("This ticket is closed.")]})
        if team is UNSET:
            team = (assignee.team if assignee else None) or current.team
        wanted = {"assignee_id": assignee.pk if assignee else None, "team_id": team.pk if team else None}
        changes = {k: (getattr(current, k), v) for k, v in wanted.items() if getattr(current, k) != v}
        if not changes:
            return _refresh(ticket, current)
        current.assignee, current.team = assignee, team
        current.save(update_fields=["assignee", "team", "updated_at"])
        audit_record(actor=actor, action="ticket.assign", target=current, changes=changes)
        if "assignee_id" in changes and assignee is not None and assignee != actor:
            _notify(notifications.assignment, ticket_id=current.pk)
    return _refresh(ticket, current)


def ticket_escalate(
    *,
    ticket: Ticket,
    reason: str,
    actor,
    assignee: User | _Unset | None = UNSET,
    team: Team | _Unset | None = UNSET,
) -> Ticket:
    """Escalate an open ticket one level, with a reason kept as an internal note, optionally to another person or
    team; the assignee and the team's managers are told by email."""
    _require(actor, Perm.TICKET_HANDLE)
    reason = _one_line(reason, "reason", MAX_REASON)
    if assignee is not UNSET:
        _check_assignee(assignee)
    with transaction.atomic():
        current = _locked(ticket)
        if not current.is_open:
            raise ValidationError({"reason": [_("Only open tickets can be escalated.")]})
        if current.escalation_level >= MAX_ESCALATION_LEVEL:
            raise ValidationError({"reason": [_("This ticket is already at the highest escalation level.")]})
        changes = {"escalation_level": (current.escalation_level, current.escalation_level + 1)}
        current.escalation_level += 1
        current.escalated_at = timezone.now()
        if assignee is not UNSET and assignee != current.assignee:
            changes["assignee_id"] = (current.assignee_id, assignee.pk if assignee else None)
            current.assignee = assignee
        if team is UNSET and assignee is not UNSET and assignee is not None and assignee.team_id:
            team = assignee.team
        if team is not UNSET and team != current.team:
            changes["team_id"] = (current.team_id, team.pk if team else None)
            current.team = team
        current.save()
        _message(
            current,
            c.MessageKind.NOTE,
            _("Escalated to level %(level)s: %(reason)s") % {"level": current.escalation_level, "reason": reason},
            actor,
        )
        audit_record(actor=actor, action="ticket.escalate", target=current, changes=changes, note=reason)
        _notify(notifications.escalation, ticket_id=current.pk, reason=reason)
    return _refresh(ticket, current)


@dataclass(frozen=True)
class EscalationRun:
    first_response: int
    resolution: int


def tickets_escalate_overdue(*, now: datetime | None = None) -> EscalationRun:
    """Escalate every open ticket past a deadline, once per missed deadline, and tell the people handling it.

    Idempotent and safe to run from several workers at once: each ticket is claimed with a conditional UPDATE
    (the deadline's escalation time still empty), so a second run, or a concurrent one, escalates nothing twice.
    """
    now = now or timezone.now()
    counts = {}
    for kind, stamp, condition in (
        ("first_response", "response_escalated_at", response_overdue(now)),
        ("resolution", "resolution_escalated_at", resolution_overdue(now)),
    ):
        due = Ticket.objects.filter(condition, status__in=c.OPEN_STATUSES, **{f"{stamp}__isnull": True})
        counts[kind] = 0
        for pk in due.order_by("pk").values_list("pk", flat=True).iterator():
            with transaction.atomic():
                claimed = Ticket.objects.filter(pk=pk, **{f"{stamp}__isnull": True}).update(
                    **{stamp: now},
                    escalated_at=now,
                    escalation_level=Least(F("escalation_level") + 1, Value(MAX_ESCALATION_LEVEL)),
                    updated_at=now,
                )
                if not claimed:
                    continue
                ticket = Ticket.objects.get(pk=pk)
                audit_record(
                    actor=None,
                    action="ticket.sla_escalate",
                    target=ticket,
                    fields=[stamp, "escalation_level", "escalated_at"],
                    note=kind,
                )
                _notify(notifications.sla_breach, ticket_id=pk, clock=kind)
            counts[kind] += 1
    return EscalationRun(**counts)


def sla_policy_update(
    *,
    policy: SlaPolicy,
    actor,
    first_response_minutes: int | None = None,
    resolution_minutes: int | None = None,
    business_hours_only: bool | None = None,
) -> SlaPolicy:
    """Change a priority's targets. Tickets opened from now on follow them; open tickets keep their deadlines."""
    _require(actor, Perm.SETTINGS_MANAGE)
    wanted = {
        "first_response_minutes": first_response_minutes,
        "resolution_minutes": resolution_minutes,
        "business_hours_only": business_hours_only,
    }
    changes = {k: (getattr(policy, k), v) for k, v in wanted.items() if v is not None and getattr(policy, k) != v}
    if not changes:
        return policy
    after = {k: changes[k][1] if k in changes else getattr(policy, k) for k in wanted}
    if after["first_response_minutes"] < 1:
        raise ValidationError({"first_response_minutes": [_("Give at least one minute.")]})
    if after["resolution_minutes"] < after["first_response_minutes"]:
        raise ValidationError({"resolution_minutes": [_("Resolution cannot be due before the first response.")]})
    for name, (_old, new) in changes.items():
        setattr(policy, name, new)
    with transaction.atomic():
        policy.updated_by = actor if actor is not None and actor.is_authenticated else None
        policy.save()
        audit_record(actor=actor, action="sla_policy.update", target=policy, changes=changes)
    return policy
