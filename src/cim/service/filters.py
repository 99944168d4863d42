"""The one filter definition of tickets and of surveys: list pages, reports and the API read them (DESIGN §3.5)."""

from datetime import date, datetime, time
from typing import Literal

from django.db.models import Q, QuerySet
from django.utils import timezone
from ninja import Schema
from pydantic import Field

from cim.customers.numbering import normalize_number
from cim.customers.schemas import MAX_ID
from cim.service import choices as c
from cim.service import sla

TICKET_SORTS = {
    "-created": ("-created_at", "-id"),
    "created": ("created_at", "id"),
    "due": ("resolution_due", "id"),
}
StatusFilter = Literal["open", "any", "new", "in_progress", "waiting", "resolved", "closed", "reopened"]


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _dates(field: str, start: date | None, end: date | None) -> Q:
    """From the start of `start` to the end of `end`, in the user's calendar days."""
    condition = Q()
    if start:
        condition &= Q(**{f"{field}__gte": _day_start(start)})
    if end:
        condition &= Q(**{f"{field}__lt": _day_start(date.fromordinal(end.toordinal() + 1))})
    return condition


class TicketFilter(Schema):
    """Filters of the ticket list. `status=open` (the default) is everything neither resolved nor closed."""

    q: str | None = Field(None, max_length=200, description="Ticket number, or words of the subject")
    status: StatusFilter = "open"
    priority: c.Priority | None = None
    category: c.Category | None = None
    channel: c.Channel | None = None
    assignee: str | None = Field(None, pattern=r"^(me|none|\d{1,18})$", description="A user id, `me` or `none`")
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer: str | None = Field(None, max_length=40, description="Customer number")
    breached: bool = Field(False, description="Only tickets that missed a deadline")
    at_risk: bool = Field(False, description="Only open tickets close to a deadline")
    created_from: date | None = None
    created_to: date | None = None
    sort: Literal["-created", "created", "due"] = "-created"

    def apply(self, queryset: QuerySet, *, user, now: datetime) -> QuerySet:
        condition = _dates("created_at", self.created_from, self.created_to)
        if self.status == "open":
            condition &= Q(status__in=c.OPEN_STATUSES)
        elif self.status != "any":
            condition &= Q(status=self.status)
        for name in ("priority", "category", "channel", "team_id"):
            if (value := getattr(self, name)) is not None:
                condition &= Q(**{name: value})
        if self.assignee == "me":
            condition &= Q(assignee_id=user.pk)
        elif self.assignee == "none":
            condition &= Q(assignee__isnull=True)
        elif self.assignee:
            condition &= Q(assignee_id=int(self.assignee))
        if self.customer:
            condition &= Q(customer__number=normalize_number(self.customer))
        if self.q and (words := self.q.strip()):
            condition &= Q(number__iexact=words) | Q(subject__icontains=words)
        if self.breached:
            condition &= sla.breached(now)
        if self.at_risk:
            condition &= sla.at_risk(now)
        return queryset.filter(condition).order_by(*TICKET_SORTS[self.sort])


class SurveyFilter(Schema):
    """Filters of survey answers and of the survey report. Dates are of the answer."""

    kind: c.SurveyKind | None = None
    channel: c.SurveyChannel | None = None
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer: str | None = Field(None, max_length=40, description="Customer number")
    ticket: str | None = Field(None, max_length=20, description="Ticket number")
    answered: bool | None = Field(True, description="true: answers only; false: unanswered; null: both")
    since: date | None = None
    until: date | None = None

    def apply(self, queryset: QuerySet) -> QuerySet:
        condition = _dates("answered_at", self.since, self.until)
        for name in ("kind", "channel", "team_id"):
            if (value := getattr(self, name)) is not None:
                condition &= Q(**{name: value})
        if self.customer:
            condition &= Q(customer__number=normalize_number(self.customer))
        if self.ticket:
            condition &= Q(ticket__number=self.ticket.strip().upper())
        if self.answered is not None:
            condition &= Q(answered_at__isnull=not self.answered)
        return queryset.filter(condition)
