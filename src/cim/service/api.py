"""The customer service API: tickets (list, open, read, reply, note, move through the workflow, assign,
escalate), SLA counts and policies, and satisfaction surveys (send, answers, report). Validates input and calls
services and selectors, never writes itself."""

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.models import Team, User
from cim.accounts.roles import Perm, has_perm
from cim.core.pagination import keyset_page
from cim.customers.models import Customer
from cim.customers.schemas import MAX_ID
from cim.customers.selectors import InvalidNumber, customer_get
from cim.customers.services import PermissionDenied
from cim.service import choices as c
from cim.service.filters import SurveyFilter, TicketFilter
from cim.service.models import SlaPolicy, Survey, Ticket, TicketMessage
from cim.service.selectors import (
    REPORT_BY,
    sla_policies,
    survey_list,
    survey_report,
    ticket_get,
    ticket_list,
    ticket_messages,
    ticket_sla_counts,
)
from cim.service.services import (
    MAX_BODY,
    MAX_REASON,
    MAX_SUBJECT,
    sla_policy_update,
    ticket_assign,
    ticket_create,
    ticket_escalate,
    ticket_note,
    ticket_reply,
    ticket_transition,
)
from cim.service.sla import ticket_clocks
from cim.service.surveys import survey_send

router = Router(tags=["customer service"])


def _require(request, *perms: str) -> None:
    if not any(has_perm(request.auth, perm) for perm in perms):
        raise PermissionDenied(perms[0])


class CustomerRef(Schema):
    number: str
    display_name: str


class TeamRef(Schema):
    id: int
    name: str


class SlaStates(Schema):
    first_response: str = Field(description="met, breached, at_risk, running")
    resolution: str = Field(description="met, breached, at_risk, running, paused")


class TicketOut(Schema):
    number: str
    customer: CustomerRef
    subject: str
    description: str
    channel: c.Channel
    category: c.Category
    priority: c.Priority
    status: c.Status
    assignee: str | None = Field(description="The assignee's username")
    team: TeamRef | None
    first_response_due: datetime
    resolution_due: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    sla_paused_at: datetime | None = Field(description="Set while waiting on the customer: the resolution clock stands")
    sla: SlaStates
    reopened_count: int
    resolution_code: str
    escalation_level: int
    escalated_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_assignee(obj: Ticket) -> str | None:
        return obj.assignee.username if obj.assignee else None

    @staticmethod
    def resolve_created_by(obj: Ticket) -> str | None:
        return obj.created_by.username if obj.created_by else None

    @staticmethod
    def resolve_sla(obj: Ticket) -> dict:
        return {name: clock.state for name, clock in ticket_clocks(obj, now=timezone.now()).items()}


class MessageOut(Schema):
    id: int
    kind: c.MessageKind
    author: str | None
    body: str
    created_at: datetime
    emailed_at: datetime | None

    @staticmethod
    def resolve_author(obj: TicketMessage) -> str | None:
        return obj.author.username if obj.author else None


class SurveyOut(Schema):
    id: int
    kind: c.SurveyKind
    customer: str = Field(description="Customer number")
    ticket: str | None = Field(description="Ticket number")
    order_id: int | None
    channel: c.SurveyChannel
    team: TeamRef | None
    created_at: datetime
    sent_at: datetime | None = Field(description="When the link was delivered; null: not (yet) delivered")
    expires_at: datetime
    answered_at: datetime | None
    score: int | None
    comment: str

    @staticmethod
    def resolve_customer(obj: Survey) -> str:
        return obj.customer.number

    @staticmethod
    def resolve_ticket(obj: Survey) -> str | None:
        return obj.ticket.number if obj.ticket else None


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]
    surveys: list[SurveyOut]

    @staticmethod
    def resolve_messages(obj: Ticket) -> list:
        return list(ticket_messages(ticket=obj))

    @staticmethod
    def resolve_surveys(obj: Ticket) -> list:
        return list(obj.surveys.select_related("customer", "team").order_by("-created_at", "-id"))


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class TicketIn(Schema):
    customer: str = Field(max_length=40, description="Customer number")
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT)
    description: str = Field("", max_length=MAX_BODY)
    channel: c.Channel
    category: c.Category = c.Category.OTHER
    priority: c.Priority = c.Priority.NORMAL
    assignee: str | None = Field(None, max_length=150, description="Username of someone who handles tickets")
    team_id: int | None = Field(None, ge=1, le=MAX_ID, description="Omitted: the assignee's team, else yours")
    opened_at: datetime | None = Field(None, description="When the customer got in touch; the SLA clocks start here")


class ReplyIn(Schema):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    email_customer: bool = Field(True, description="Email the reply to the customer's primary address, if any")
    status: c.Status | None = Field(None, description="Then move the ticket to this status, e.g. `waiting`")
    resolution_code: c.ResolutionCode | None = None


class NoteIn(Schema):
    body: str = Field(min_length=1, max_length=MAX_BODY)


class TransitionIn(Schema):
    status: c.Status
    resolution_code: c.ResolutionCode | None = Field(
        None, description="Required to resolve, and to close a ticket never resolved"
    )


class AssignIn(Schema):
    assignee: str | None = Field(max_length=150, description="Username; null: nobody")
    team_id: int | None = Field(None, ge=1, le=MAX_ID, description="Omitted: the assignee's team")


class EscalateIn(Schema):
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    assignee: str | None = Field(None, max_length=150, description="Hand over to this username; omitted: keep")
    team_id: int | None = Field(None, ge=1, le=MAX_ID, description="Hand over to this team; omitted: keep")


class SlaPolicyOut(Schema):
    priority: c.Priority
    first_response_minutes: int
    resolution_minutes: int
    business_hours_only: bool


class SlaPolicyPatch(Schema):
    first_response_minutes: int | None = Field(None, ge=1, le=1_000_000)
    resolution_minutes: int | None = Field(None, ge=1, le=1_000_000)
    business_hours_only: bool | None = None


class ClockCounts(Schema):
    met: int
    breached: int
    open: int
    at_risk: int


class SlaCountsOut(Schema):
    total: int
    breached: int = Field(description="Tickets that missed either deadline")
    at_risk: int = Field(description="Open tickets close to a deadline, none missed yet")
    first_response: ClockCounts
    resolution: ClockCounts


class SurveyIn(Schema):
    customer: str = Field(max_length=40, description="Customer number")
    kind: c.SurveyKind
    channel: c.SurveyChannel = Field(description="email: the primary email address; sms: the primary phone")
    ticket: str | None = Field(None, max_length=20, description="Ticket number")
    order_id: int | None = Field(None, ge=1, le=MAX_ID)


class SurveyPage(Schema):
    items: list[SurveyOut]
    next_cursor: str | None


class ReportRowOut(Schema):
    key: str
    label: str
    csat_answers: int
    csat_average: float | None
    csat: float | None = Field(description="% of CSAT answers scoring 4 or 5")
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="% promoters (9–10) − % detractors (0–6)")


class ReportOut(Schema):
    by: str
    rows: list[ReportRowOut]
    total: ReportRowOut


def _customer(request, number: str) -> Customer:
    """A customer named in a body: in the caller's scope, or a validation error on the field."""
    try:
        return customer_get(user=request.auth, number=number)
    except (InvalidNumber, Http404) as error:
        raise ValidationError({"customer": [str(error)]}) from None


def _user(username: str | None, field: str) -> User | None:
    if username is None:
        return None
    user = User.objects.filter(username=username, is_active=True).select_related("team").first()
    if user is None:
        raise ValidationError({field: [_("No active user named “%(name)s”.") % {"name": username[:150]}]})
    return user


def _team(team_id: int | None, field: str = "team_id") -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise ValidationError({field: [_("No such team.")]})
    return team


def _ticket(request, ticket_number: str) -> Ticket:
    return ticket_get(user=request.auth, number=ticket_number)


@router.get("/tickets", response=TicketPage, summary="List tickets")
def list_tickets(
    request, filters: Query[TicketFilter], cursor: str | None = None, limit: int = Query(50, ge=1, le=500)
):
    _require(request, Perm.CUSTOMER_VIEW)
    tickets = ticket_list(user=request.auth, filters=filters).select_related("created_by")
    items, next_cursor = keyset_page(tickets, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/tickets", response={201: TicketDetailOut}, summary="Open a ticket")
def create_ticket(request, payload: TicketIn):
    _require(request, Perm.TICKET_HANDLE)
    team = {"team": _team(payload.team_id)} if payload.team_id is not None else {}
    ticket = ticket_create(
        customer=_customer(request, payload.customer),
        subject=payload.subject,
        description=payload.description,
        channel=payload.channel,
        category=payload.category,
        priority=payload.priority,
        assignee=_user(payload.assignee, "assignee"),
        opened_at=payload.opened_at,
        actor=request.auth,
        **team,
    )
    return Status(201, Ticket.objects.select_related("customer", "assignee", "team", "created_by").get(pk=ticket.pk))


# Before `/tickets/{ticket_number}`, which would otherwise take `sla` for a number.
@router.get("/tickets/sla", response=SlaCountsOut, summary="SLA counts: met, breached, open and at risk")
def sla_counts(request, filters: Query[TicketFilter]):
    _require(request, Perm.CUSTOMER_VIEW)
    return ticket_sla_counts(user=request.auth, filters=filters)


@router.get("/tickets/{ticket_number}", response=TicketDetailOut, summary="A ticket with its conversation")
def get_ticket(request, ticket_number: str):
    _require(request, Perm.CUSTOMER_VIEW)
    return _ticket(request, ticket_number)


@router.post("/tickets/{ticket_number}/replies", response={201: MessageOut}, summary="Reply to the customer")
def reply(request, ticket_number: str, payload: ReplyIn):
    _require(request, Perm.TICKET_HANDLE)
    message = ticket_reply(
        ticket=_ticket(request, ticket_number),
        body=payload.body,
        actor=request.auth,
        email_customer=payload.email_customer,
        status=payload.status,
        resolution_code=payload.resolution_code or "",
    )
    return Status(201, message)


@router.post("/tickets/{ticket_number}/notes", response={201: MessageOut}, summary="Add an internal note")
def note(request, ticket_number: str, payload: NoteIn):
    _require(request, Perm.TICKET_HANDLE)
    return Status(201, ticket_note(ticket=_ticket(request, ticket_number), body=payload.body, actor=request.auth))


@router.post("/tickets/{ticket_number}/transition", response=TicketDetailOut, summary="Change a ticket's status")
def transition(request, ticket_number: str, payload: TransitionIn):
    _require(request, Perm.TICKET_HANDLE)
    ticket = _ticket(request, ticket_number)
    ticket_transition(
        ticket=ticket, status=payload.status, resolution_code=payload.resolution_code or "", actor=request.auth
    )
    return _ticket_after(ticket)


@router.post("/tickets/{ticket_number}/assign", response=TicketDetailOut, summary="Assign a ticket")
def assign(request, ticket_number: str, payload: AssignIn):
    _require(request, Perm.TICKET_HANDLE)
    ticket = _ticket(request, ticket_number)
    team = {"team": _team(payload.team_id)} if "team_id" in payload.model_fields_set else {}
    ticket_assign(ticket=ticket, assignee=_user(payload.assignee, "assignee"), actor=request.auth, **team)
    return _ticket_after(ticket)


@router.post("/tickets/{ticket_number}/escalate", response=TicketDetailOut, summary="Escalate a ticket one level")
def escalate(request, ticket_number: str, payload: EscalateIn):
    _require(request, Perm.TICKET_HANDLE)
    ticket = _ticket(request, ticket_number)
    handover = {}
    if "assignee" in payload.model_fields_set:
        handover["assignee"] = _user(payload.assignee, "assignee")
    if "team_id" in payload.model_fields_set:
        handover["team"] = _team(payload.team_id)
    ticket_escalate(ticket=ticket, reason=payload.reason, actor=request.auth, **handover)
    return _ticket_after(ticket)


def _ticket_after(ticket: Ticket) -> Ticket:
    """The ticket after a write that may have handed it out of the caller's scope: the write stands, so answer
    with it rather than a 404."""
    return Ticket.objects.select_related("customer", "assignee", "team", "created_by").get(pk=ticket.pk)


@router.get("/sla-policies", response=list[SlaPolicyOut], summary="SLA targets by priority")
def list_sla_policies(request):
    _require(request, Perm.CUSTOMER_VIEW)
    return sla_policies()


@router.patch("/sla-policies/{priority}", response=SlaPolicyOut, summary="Change a priority's SLA targets")
def update_sla_policy(request, priority: c.Priority, payload: SlaPolicyPatch):
    _require(request, Perm.SETTINGS_MANAGE)
    policy = SlaPolicy.objects.filter(priority=priority).first()
    if policy is None:
        raise Http404(_("No SLA policy for this priority."))
    return sla_policy_update(policy=policy, actor=request.auth, **payload.model_dump(exclude_unset=True))


@router.post("/surveys", response={201: SurveyOut}, summary="Send a CSAT or NPS survey")
def send_survey(request, payload: SurveyIn):
    _require(request, Perm.SURVEY_MANAGE)
    customer = _customer(request, payload.customer)
    ticket = None
    if payload.ticket:
        try:
            ticket = _ticket(request, payload.ticket)
        except Http404 as error:
            raise ValidationError({"ticket": [str(error)]}) from None
    survey = survey_send(
        customer=customer,
        kind=payload.kind,
        channel=payload.channel,
        ticket=ticket,
        order_id=payload.order_id,
        actor=request.auth,
    )
    return Status(201, Survey.objects.select_related("customer", "ticket", "team").get(pk=survey.pk))


@router.get("/surveys", response=SurveyPage, summary="Survey answers (and, with answered=false, open surveys)")
def list_surveys(
    request, filters: Query[SurveyFilter], cursor: str | None = None, limit: int = Query(50, ge=1, le=500)
):
    _require(request, Perm.SURVEY_MANAGE, Perm.PERFORMANCE_VIEW)
    items, next_cursor = keyset_page(survey_list(user=request.auth, filters=filters), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/surveys/report", response=ReportOut, summary="CSAT and NPS by month, week, team or channel")
def report(
    request,
    filters: Query[SurveyFilter],
    by: Literal["month", "week", "team", "channel"] = Query("month", description=", ".join(REPORT_BY)),
):
    _require(request, Perm.SURVEY_MANAGE, Perm.PERFORMANCE_VIEW)
    return survey_report(user=request.auth, filters=filters, by=by)
