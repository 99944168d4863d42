"""SLA clock states, as query conditions (for counts and filters over any number of tickets) and per ticket
(for the pages). The conditions and `ticket_clocks` say the same thing; tests hold them to it.

First response: the clock stops at the first reply to the customer (or at resolution, if nobody replied).
Resolution: the clock stops at resolution; it stands still while the ticket waits on the customer, and a reopened
ticket gets back the time it had left. A deadline missed is breached for good, whatever happens next.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet
from django.utils.translation import pgettext_lazy

from cim.service import conf
from cim.service.choices import OPEN_STATUSES
from cim.service.models import Ticket

MET, BREACHED, AT_RISK, RUNNING, PAUSED = "met", "breached", "at_risk", "running", "paused"
STATE_LABELS = {
    MET: pgettext_lazy("SLA", "Met"),
    BREACHED: pgettext_lazy("SLA", "Breached"),
    AT_RISK: pgettext_lazy("SLA", "At risk"),
    RUNNING: pgettext_lazy("SLA", "Running"),
    PAUSED: pgettext_lazy("SLA", "Paused"),
}


def response_breached(now: datetime) -> Q:
    return Q(first_responded_at__gt=F("first_response_due")) | Q(
        first_responded_at__isnull=True, first_response_due__lt=now
    )


def response_met() -> Q:
    return Q(first_responded_at__lte=F("first_response_due"))


def response_open(now: datetime) -> Q:
    return Q(first_responded_at__isnull=True, first_response_due__gte=now)


def resolution_breached(now: datetime) -> Q:
    return (
        Q(resolved_at__gt=F("resolution_due"))
        | Q(resolved_at__isnull=True, sla_paused_at__isnull=True, resolution_due__lt=now)
        | Q(resolved_at__isnull=True, sla_paused_at__gt=F("resolution_due"))
    )


def resolution_met() -> Q:
    return Q(resolved_at__lte=F("resolution_due"))


def resolution_open(now: datetime) -> Q:
    return Q(resolved_at__isnull=True) & ~resolution_breached(now)


def response_overdue(now: datetime) -> Q:
    """Still waiting for a first response past its deadline."""
    return Q(first_responded_at__isnull=True, first_response_due__lt=now)


def resolution_overdue(now: datetime) -> Q:
    """Still unresolved with its resolution deadline missed."""
    return Q(resolved_at__isnull=True) & resolution_breached(now)


def breached(now: datetime) -> Q:
    """Either deadline missed."""
    return response_breached(now) | resolution_breached(now)


def at_risk(now: datetime) -> Q:
    """Open, nothing missed yet, and a running deadline within the at-risk window."""
    soon = now + conf.at_risk()
    return (
        Q(status__in=OPEN_STATUSES)
        & ~breached(now)
        & (
            Q(first_responded_at__isnull=True, first_response_due__lt=soon)
            | Q(sla_paused_at__isnull=True, resolution_due__lt=soon)
        )
    )


def sla_counts(tickets: QuerySet[Ticket], *, now: datetime) -> dict[str, dict[str, int]]:
    """Met, breached, still open and at risk, per clock, over `tickets`: one query."""
    soon = now + conf.at_risk()
    counts = tickets.order_by().aggregate(
        total=Count("pk"),
        response_met=Count("pk", filter=response_met()),
        response_breached=Count("pk", filter=response_breached(now)),
        response_open=Count("pk", filter=response_open(now)),
        response_at_risk=Count("pk", filter=response_open(now) & Q(first_response_due__lt=soon)),
        resolution_met=Count("pk", filter=resolution_met()),
        resolution_breached=Count("pk", filter=resolution_breached(now)),
        resolution_open=Count("pk", filter=resolution_open(now)),
        resolution_at_risk=Count(
            "pk", filter=resolution_open(now) & Q(sla_paused_at__isnull=True, resolution_due__lt=soon)
        ),
        breached=Count("pk", filter=breached(now)),
        at_risk=Count("pk", filter=at_risk(now)),
    )
    return {
        "total": counts["total"],
        "breached": counts["breached"],
        "at_risk": counts["at_risk"],
        "first_response": {k: counts[f"response_{k}"] for k in ("met", "breached", "open", "at_risk")},
        "resolution": {k: counts[f"resolution_{k}"] for k in ("met", "breached", "open", "at_risk")},
    }


@dataclass(frozen=True)
class Clock:
    state: str
    due: datetime
    stopped_at: datetime | None = None

    @property
    def label(self):
        return STATE_LABELS[self.state]


def _state(due: datetime, stopped_at: datetime | None, now: datetime, paused: bool = False) -> str:
    if stopped_at is not None:
        return MET if stopped_at <= due else BREACHED
    if due < now:
        return BREACHED
    if paused:
        return PAUSED
    return AT_RISK if due < now + conf.at_risk() else RUNNING


def ticket_clocks(ticket: Ticket, *, now: datetime) -> dict[str, Clock]:
    """The state of each of the ticket's two clocks."""
    paused_at = ticket.sla_paused_at
    resolution_now = paused_at if paused_at is not None and ticket.resolved_at is None else now
    return {
        "first_response": Clock(
            _state(ticket.first_response_due, ticket.first_responded_at, now),
            ticket.first_response_due,
            ticket.first_responded_at,
        ),
        "resolution": Clock(
            _state(ticket.resolution_due, ticket.resolved_at, resolution_now, paused=paused_at is not None),
            ticket.resolution_due,
            ticket.resolved_at,
        ),
    }
