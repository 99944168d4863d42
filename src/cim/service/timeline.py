"""The customer's timeline: tickets when opened (with their status now), and survey answers with their score."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.timeline import TimelineEntry, older_than, timeline_source
from cim.service.choices import SCORE_RANGE
from cim.service.models import Survey, Ticket


@timeline_source(
    "ticket", gettext_lazy("Tickets"), rows=lambda customer_id: Ticket.objects.filter(customer_id=customer_id)
)
def ticket_entries(*, rows: QuerySet[Ticket], before, limit: int) -> list[TimelineEntry]:
    tickets = (
        rows.filter(older_than(before, "ticket", at="created_at"))
        .select_related("created_by")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=ticket.created_at,
            kind="ticket",
            key=ticket.pk,
            title=_("Ticket %(number)s: %(subject)s") % {"number": ticket.number, "subject": ticket.subject},
            detail=f"{ticket.get_category_display()} · {ticket.get_channel_display()}",
            url=reverse("service:ticket_detail", kwargs={"number": ticket.number}),
            actor=str(ticket.created_by or ""),
            badges=(ticket.get_status_display(), ticket.get_priority_display()),
        )
        for ticket in tickets
    ]


@timeline_source(
    "survey",
    gettext_lazy("Survey answers"),
    rows=lambda customer_id: Survey.objects.filter(customer_id=customer_id, answered_at__isnull=False),
)
def survey_entries(*, rows: QuerySet[Survey], before, limit: int) -> list[TimelineEntry]:
    surveys = (
        rows.filter(older_than(before, "survey", at="answered_at"))
        .select_related("ticket")
        .order_by("-answered_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=survey.answered_at,
            kind="survey",
            key=survey.pk,
            title=_("%(kind)s answered: %(score)s of %(top)s")
            % {
                "kind": "CSAT" if survey.kind == Survey.Kind.CSAT else "NPS",
                "score": survey.score,
                "top": SCORE_RANGE[Survey.Kind(survey.kind)][1],
            },
            detail=survey.comment,
            url=reverse("service:ticket_detail", kwargs={"number": survey.ticket.number}) if survey.ticket else "",
            badges=(survey.ticket.number,) if survey.ticket else (),
        )
        for survey in surveys
    ]
