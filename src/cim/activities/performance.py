"""Staff performance (绩效) over a period, per member of staff and per team: the figures a manager reviews.

Each figure is one grouped query over its own table (customers by owner, follow-ups by owner, interactions by
who logged them, tickets by assignee, surveys by the ticket's assignee, orders by the customer's owner), so a
report over a year of a large installation reads indexes, not rows one by one.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.accounts.roles import Scope, scope_of
from cim.accounts.scopes import scope_team_ids
from cim.activities.models import FollowUp, Interaction, Order
from cim.customers.models import Customer
from cim.service.choices import OPEN_STATUSES, SurveyKind
from cim.service.models import Survey, Ticket

COUNTED = (Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class StaffFigures:
    customers: int = 0  # active customers owned now
    follow_ups_done: int = 0
    follow_ups_on_time: int = 0
    follow_ups_overdue: int = 0  # open and past due now
    interactions: int = 0
    tickets_resolved: int = 0
    first_response_minutes: float | None = None  # average, tickets opened in the period and answered
    resolution_hours: float | None = None  # average, tickets resolved in the period
    first_response_breaches: int = 0
    csat_answers: int = 0
    csat_satisfied: int = 0  # answers of 4 or 5
    earlier_buyers: int = 0  # owned customers who bought in the period before
    retained: int = 0  # of those, who bought again in the period
    revenue: Decimal = Decimal(0)  # net of refunds, orders of owned customers in the period

    @property
    def on_time_rate(self) -> float | None:
        return self.follow_ups_on_time / self.follow_ups_done if self.follow_ups_done else None

    @property
    def csat(self) -> float | None:
        return self.csat_satisfied / self.csat_answers if self.csat_answers else None

    @property
    def retention(self) -> float | None:
        return self.retained / self.earlier_buyers if self.earlier_buyers else None


@dataclass
class StaffRow:
    user: User
    figures: StaffFigures = field(default_factory=StaffFigures)


@dataclass
class TeamRow:
    name: str
    members: int
    figures: StaffFigures


@dataclass
class PerformanceReport:
    since: datetime
    until: datetime
    staff: list[StaffRow]
    teams: list[TeamRow]


def staff_visible(*, user) -> list[User]:
    """Whose performance `user` may see: everyone, their team, or only themselves (as with customers)."""
    staff = User.objects.filter(is_active=True).select_related("team").order_by("team__name", "username")
    scope = scope_of(user)
    if scope == Scope.ALL:
        return list(staff)
    if (teams := scope_team_ids(user)) is not None:
        return list(staff.filter(team_id__in=teams))
    return [user]


def _minutes(delta) -> float | None:
    if delta is None:
        return None
    return (delta if isinstance(delta, timedelta) else timedelta(microseconds=delta)).total_seconds() / 60


def performance_report(*, user, since: datetime | None = None, until: datetime | None = None) -> PerformanceReport:
    """The figures of the staff `user` may see, between `since` and `until` (default: the last 30 days)."""
    until = until or timezone.now()
    since = since or until - timedelta(days=30)
    if not EARLIEST <= since < until:
        raise ValidationError({"since": _("Choose a period that starts before it ends, in 1970 or later.")})
    staff = staff_visible(user=user)
    rows = {member.pk: StaffRow(member) for member in staff}
    ids = list(rows)

    def put(pairs, name: str) -> None:
        for pk, value in pairs:
            if pk in rows and value is not None:
                setattr(rows[pk].figures, name, value)

    owned = Customer.objects.filter(owner_id__in=ids, status="active").values("owner_id")
    put(owned.annotate(n=Count("pk")).values_list("owner_id", "n"), "customers")
    done = FollowUp.objects.filter(owner_id__in=ids, status=FollowUp.Status.DONE, done_at__gte=since, done_at__lt=until)
    for pk, total, on_time in (
        done.values("owner_id")
        .annotate(total=Count("pk"), on_time=Count("pk", filter=Q(done_at__lte=F("due_at"))))
        .values_list("owner_id", "total", "on_time")
    ):
        rows[pk].figures.follow_ups_done, rows[pk].figures.follow_ups_on_time = total, on_time
    overdue = FollowUp.objects.filter(owner_id__in=ids, status=FollowUp.Status.OPEN, due_at__lt=timezone.now())
    put(overdue.values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n"), "follow_ups_overdue")
    logged = Interaction.objects.filter(logged_by_id__in=ids, occurred_at__gte=since, occurred_at__lt=until)
    put(logged.values("logged_by_id").annotate(n=Count("pk")).values_list("logged_by_id", "n"), "interactions")
    _tickets(rows, ids, since, until)
    _csat(rows, ids, since, until)
    _customers_buying(rows, ids, since, until)
    return PerformanceReport(since, until, list(rows.values()), _teams(rows.values()))


def _tickets(rows: dict, ids: list[int], since: datetime, until: datetime) -> None:
    response = ExpressionWrapper(F("first_responded_at") - F("created_at"), output_field=DurationField())
    resolution = ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField())
    opened = Ticket.objects.filter(assignee_id__in=ids, created_at__gte=since, created_at__lt=until)
    for pk, average, breaches in (
        opened.values("assignee_id")
        .annotate(
            average=Avg(response, filter=Q(first_responded_at__isnull=False)),
            breaches=Count(
                "pk",
                filter=Q(first_responded_at__gt=F("first_response_due"))
                | Q(first_responded_at__isnull=True, first_response_due__lt=timezone.now(), status__in=OPEN_STATUSES),
            ),
        )
        .values_list("assignee_id", "average", "breaches")
    ):
        rows[pk].figures.first_response_minutes = _minutes(average)
        rows[pk].figures.first_response_breaches = breaches
    resolved = Ticket.objects.filter(assignee_id__in=ids, resolved_at__gte=since, resolved_at__lt=until)
    for pk, count, average in (
        resolved.values("assignee_id")
        .annotate(count=Count("pk"), average=Avg(resolution))
        .values_list("assignee_id", "count", "average")
    ):
        rows[pk].figures.tickets_resolved = count
        hours = _minutes(average)
        rows[pk].figures.resolution_hours = hours / 60 if hours is not None else None


def _csat(rows: dict, ids: list[int], since: datetime, until: datetime) -> None:
    answered = Survey.objects.filter(
        kind=SurveyKind.CSAT, ticket__assignee_id__in=ids, answered_at__gte=since, answered_at__lt=until
    )
    for pk, total, satisfied in (
        answered.values("ticket__assignee_id")
        .annotate(total=Count("pk"), satisfied=Count("pk", filter=Q(score__gte=4)))
        .values_list("ticket__assignee_id", "total", "satisfied")
    ):
        rows[pk].figures.csat_answers, rows[pk].figures.csat_satisfied = total, satisfied


def _customers_buying(rows: dict, ids: list[int], since: datetime, until: datetime) -> None:
    """Revenue of owned customers in the period, and how many who bought in the period before bought again."""
    before = max(since - (until - since), EARLIEST)
    orders = Order.objects.filter(customer__owner_id__in=ids, status__in=COUNTED)
    for pk, revenue in (
        orders.filter(ordered_at__gte=since, ordered_at__lt=until)
        .values("customer__owner_id")
        .annotate(revenue=Sum("net_amount"))
        .values_list("customer__owner_id", "revenue")
    ):
        rows[pk].figures.revenue = Decimal(revenue or 0).quantize(Decimal("0.01"))
    earlier = orders.filter(ordered_at__gte=before, ordered_at__lt=since).values("customer_id")
    again = orders.filter(ordered_at__gte=since, ordered_at__lt=until, customer_id__in=earlier).values("customer_id")
    buyers = Customer.objects.filter(owner_id__in=ids, pk__in=earlier).values("owner_id")
    for pk, total, kept in buyers.annotate(total=Count("pk"), kept=Count("pk", filter=Q(pk__in=again))).values_list(
        "owner_id", "total", "kept"
    ):
        rows[pk].figures.earlier_buyers, rows[pk].figures.retained = total, kept


def _teams(rows) -> list[TeamRow]:
    """Each team's sums, with averages weighted by what they average over."""
    teams: dict[str, list[StaffFigures]] = {}
    for row in rows:
        teams.setdefault(row.user.team.name if row.user.team else "", []).append(row.figures)
    result = []
    for name, members in sorted(teams.items()):
        total = StaffFigures()
        for name_ in (
            "customers", "follow_ups_done", "follow_ups_on_time", "follow_ups_overdue", "interactions",
            "tickets_resolved", "first_response_breaches", "csat_answers", "csat_satisfied", "earlier_buyers",
            "retained", "revenue",
        ):  # fmt: skip
            setattr(total, name_, sum(getattr(m, name_) for m in members))
        total.resolution_hours = _weighted(members, "resolution_hours", "tickets_resolved")
        answered = [m for m in members if m.first_response_minutes is not None]
        total.first_response_minutes = (
            sum(m.first_response_minutes for m in answered) / len(answered) if answered else None
        )
        result.append(TeamRow(name, len(members), total))
    return result


def _weighted(members: list[StaffFigures], value: str, weight: str) -> float | None:
    pairs = [(getattr(m, value), getattr(m, weight)) for m in members if getattr(m, value) is not None]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def performance_table(report: PerformanceReport) -> tuple[list[str], list[list]]:
    """The report as a header and rows (staff, then teams), for the CSV and XLSX exports."""
    header = [
        str(label)
        for label in (
            _("Staff"), _("Team"), _("Customers owned"), _("Follow-ups done"), _("On time"), _("Overdue now"),
            _("Interactions"), _("Tickets resolved"), _("First response (min, avg)"), _("Resolution (h, avg)"),
            _("First-response breaches"), _("CSAT answers"), _("CSAT (share of 4–5)"), _("Retention"),
            _("Revenue"),
        )
    ]  # fmt: skip
    rows = []
    for name, team, f in [(str(r.user), r.user.team.name if r.user.team else "", r.figures) for r in report.staff] + [
        (_("Team total"), t.name, t.figures) for t in report.teams
    ]:
        rows.append(
            [
                str(name), team, f.customers, f.follow_ups_done, _ratio(f.on_time_rate), f.follow_ups_overdue,
                f.interactions, f.tickets_resolved, _round(f.first_response_minutes), _round(f.resolution_hours),
                f.first_response_breaches, f.csat_answers, _ratio(f.csat), _ratio(f.retention), float(f.revenue),
            ]
        )  # fmt: skip
    return header, rows


def _ratio(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
