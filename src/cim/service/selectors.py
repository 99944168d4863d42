"""Every read of tickets and surveys that pages, the API and the CLI share; the user's scope is applied here.

A user sees the tickets of the customers they may see, plus those given to them or to their team (a service team
works tickets of customers that sales teams own). Surveys follow the same rule.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.accounts.models import Team, User
from cim.accounts.roles import ROLE_PERMISSIONS, Perm, Scope, scope_of
from cim.customers.models import Customer
from cim.service import choices as c
from cim.service import sla
from cim.service.filters import SurveyFilter, TicketFilter
from cim.service.models import SlaPolicy, Survey, Ticket, TicketMessage
from cim.service.services import sla_policy_for

REPORT_BY = {
    "month": gettext_lazy("Month"),
    "week": gettext_lazy("Week"),
    "team": gettext_lazy("Team"),
    "channel": gettext_lazy("Channel"),
}


EVERYONE = object()  # in place of a user: no scope, for the CLI, which runs with the server's rights


def _scope(model, user) -> QuerySet:
    if user is EVERYONE:
        return model.objects.all()
    if not (user and user.is_authenticated and user.is_active):
        return model.objects.none()
    scope = scope_of(user)
    if scope == Scope.ALL:
        return model.objects.all()
    condition = Q(customer__in=Customer.objects.visible_to(user).values("pk"))
    if model is Ticket:
        condition |= Q(assignee_id=user.pk)
    if scope == Scope.TEAM and user.team_id:
        condition |= Q(team_id=user.team_id)
    return model.objects.filter(condition)


def tickets_visible_to(user) -> QuerySet[Ticket]:
    return _scope(Ticket, user)


def ticket_list(*, user, filters: TicketFilter, now: datetime | None = None) -> QuerySet[Ticket]:
    """The tickets `user` may see that match `filters`, for a list page or an API page."""
    queryset = filters.apply(tickets_visible_to(user), user=user, now=now or timezone.now())
    return queryset.select_related("customer", "assignee", "team")


def ticket_get(*, user, number: str) -> Ticket:
    """One ticket by number, within the user's scope; Http404 otherwise."""
    ticket = (
        tickets_visible_to(user)
        .select_related("customer", "assignee", "team", "created_by")
        .filter(number=number.strip().upper())
        .first()
    )
    if ticket is None:
        raise Http404(_("No ticket with number %(number)s.") % {"number": number[:20]})
    return ticket


def ticket_messages(*, ticket: Ticket) -> QuerySet[TicketMessage]:
    return ticket.messages.select_related("author").order_by("created_at", "id")


def ticket_sla_counts(*, user, filters: TicketFilter, now: datetime | None = None) -> dict:
    """SLA counts (met, breached, open, at risk per clock) over the tickets the filters select, breach filters
    aside: what the list page shows above its rows."""
    plain = filters.model_copy(update={"breached": False, "at_risk": False})
    now = now or timezone.now()
    return sla.sla_counts(plain.apply(tickets_visible_to(user), user=user, now=now), now=now)


def ticket_handlers() -> QuerySet[User]:
    """Active users whose role lets them handle tickets: who a ticket can be given to."""
    roles = [role for role, perms in ROLE_PERMISSIONS.items() if Perm.TICKET_HANDLE in perms]
    return User.objects.filter(is_active=True, role__in=roles).select_related("team").order_by("username")


def sla_policies() -> list[SlaPolicy]:
    """One policy per priority, most urgent first."""
    return [sla_policy_for(priority) for priority in c.Priority.values]


def surveys_visible_to(user) -> QuerySet[Survey]:
    return _scope(Survey, user)


def survey_list(*, user, filters: SurveyFilter) -> QuerySet[Survey]:
    queryset = filters.apply(surveys_visible_to(user)).order_by("-created_at", "-id")
    return queryset.select_related("customer", "ticket", "team")


@dataclass(frozen=True)
class ReportRow:
    key: str
    label: str
    csat_answers: int
    csat_average: float | None  # mean score, 1–5
    csat: float | None  # % of answers scoring 4 or 5
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None  # % promoters (9–10) − % detractors (0–6), from −100 to 100


def _row(key: str, label: str, counts: dict) -> ReportRow:
    csat_n, nps_n = counts["csat_answers"], counts["nps_answers"]
    promoters, detractors = counts["promoters"], counts["detractors"]
    return ReportRow(
        key=key,
        label=label,
        csat_answers=csat_n,
        csat_average=round(counts["csat_total"] / csat_n, 2) if csat_n else None,
        csat=round(100 * counts["csat_satisfied"] / csat_n, 1) if csat_n else None,
        nps_answers=nps_n,
        promoters=promoters,
        passives=nps_n - promoters - detractors,
        detractors=detractors,
        nps=round(100 * (promoters - detractors) / nps_n, 1) if nps_n else None,
    )


_MEASURES = {
    "csat_answers": Count("pk", filter=Q(kind=c.SurveyKind.CSAT)),
    "csat_total": Sum("score", filter=Q(kind=c.SurveyKind.CSAT), default=0),
    "csat_satisfied": Count("pk", filter=Q(kind=c.SurveyKind.CSAT, score__gte=4)),
    "nps_answers": Count("pk", filter=Q(kind=c.SurveyKind.NPS)),
    "promoters": Count("pk", filter=Q(kind=c.SurveyKind.NPS, score__gte=9)),
    "detractors": Count("pk", filter=Q(kind=c.SurveyKind.NPS, score__lte=6)),
}


def _group_key(by: str):
    zone = timezone.get_current_timezone()
    return {
        "month": TruncMonth("answered_at", tzinfo=zone),
        "week": TruncWeek("answered_at", tzinfo=zone),
        "team": F("team_id"),
        "channel": F("channel"),
    }[by]


def _labels(by: str, keys: list) -> dict:
    if by == "month":
        return {k: (k.strftime("%Y-%m"), k.strftime("%Y-%m")) for k in keys}
    if by == "week":
        return {k: (k.strftime("%Y-%m-%d"), "{}-W{:02d}".format(*k.isocalendar()[:2])) for k in keys}
    if by == "team":
        names = dict(Team.objects.filter(pk__in=[k for k in keys if k]).values_list("pk", "name"))
        return {k: (str(k or ""), names.get(k, _("No team"))) for k in keys}
    channels = dict(c.SurveyChannel.choices)
    return {k: (k, str(channels.get(k, k))) for k in keys}


@dataclass(frozen=True)
class SurveyReport:
    by: str
    rows: list[ReportRow]
    total: ReportRow


def survey_report(*, user, filters: SurveyFilter, by: str = "month") -> SurveyReport:
    """CSAT (share of 4–5 answers, average) and NPS (% promoters − % detractors) of the answers `user` may see,
    grouped by month, week, team or the channel the survey was sent by. Two queries, whatever the volume."""
    answers = filters.model_copy(update={"answered": True}).apply(surveys_visible_to(user)).order_by()
    grouped = list(answers.annotate(group=_group_key(by)).values("group").annotate(**_MEASURES).order_by("group"))
    labels = _labels(by, [row["group"] for row in grouped])
    rows = [_row(*labels[row["group"]], row) for row in grouped]
    if by == "team":
        rows.sort(key=lambda row: (row.key == "", row.label))
    return SurveyReport(by=by, rows=rows, total=survey_scores(answers))


def survey_scores(answers: QuerySet[Survey]) -> ReportRow:
    """CSAT and NPS of any set of answered surveys, in one query (the dashboard selects its own)."""
    return _row("", _("All"), answers.order_by().aggregate(**_MEASURES))


@dataclass(frozen=True)
class ServiceSummary:
    open_count: int
    open_breached: int
    breached_total: int
    open_tickets: list[Ticket]
    last_csat: Survey | None
    last_nps: Survey | None


def customer_service_summary(
    *, customer: Customer, limit: int = 5, has_tickets: bool = True, has_answers: bool = True
) -> ServiceSummary:
    """A customer's service at a glance, for the 360° page: open tickets (most urgent deadline first), deadlines
    missed, and the last CSAT and NPS answers. The caller has checked the customer is in the user's scope; it
    says `has_tickets=False` or `has_answers=False` when it knows the customer has no tickets or survey answers."""
    now = timezone.now()
    tickets = Ticket.objects.filter(customer=customer)
    counts = {"open_count": 0, "open_breached": 0, "breached_total": 0}
    if has_tickets:
        counts = tickets.aggregate(
            open_count=Count("pk", filter=Q(status__in=c.OPEN_STATUSES)),
            open_breached=Count("pk", filter=Q(status__in=c.OPEN_STATUSES) & sla.breached(now)),
            breached_total=Count("pk", filter=sla.breached(now)),
        )
    open_tickets = []
    if counts["open_count"]:  # most customers have none, and the page is spared a query
        open_tickets = list(
            tickets.filter(status__in=c.OPEN_STATUSES)
            .select_related("assignee")
            .order_by("resolution_due", "id")[:limit]
        )
    answered = Survey.objects.filter(customer=customer, answered_at__isnull=False).order_by("-answered_at", "-id")
    return ServiceSummary(
        **counts,
        open_tickets=open_tickets,
        last_csat=answered.filter(kind=c.SurveyKind.CSAT).first() if has_answers else None,
        last_nps=answered.filter(kind=c.SurveyKind.NPS).first() if has_answers else None,
    )
