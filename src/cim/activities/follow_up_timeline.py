"""Follow-ups on the customer's timeline: each at the time it was created, with its due time, owner and status."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.models import FollowUp, Priority
from cim.activities.timeline import Cursor, TimelineEntry, older_than, timeline_source

KIND = "follow_up"


@timeline_source(
    KIND, gettext_lazy("Follow-ups"), rows=lambda customer_id: FollowUp.objects.filter(customer_id=customer_id)
)
def follow_up_entries(*, rows: QuerySet[FollowUp], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    follow_ups = (
        rows.filter(older_than(before, KIND, at="created_at"))
        .select_related("owner", "created_by", "plan")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for follow_up in follow_ups:
        badges = [follow_up.get_status_display()]
        if follow_up.priority in (Priority.HIGH, Priority.URGENT):
            badges.append(follow_up.get_priority_display())
        if follow_up.status == FollowUp.Status.OPEN and follow_up.due_at < timezone.now():
            badges.append(_("Overdue"))
        entries.append(
            TimelineEntry(
                at=follow_up.created_at,
                kind=KIND,
                key=follow_up.pk,
                title=follow_up.title,
                detail=_("Due %(due)s · owner %(owner)s")
                % {"due": f"{timezone.localtime(follow_up.due_at):%Y-%m-%d %H:%M}", "owner": follow_up.owner},
                url=reverse("activities:follow_up", args=[follow_up.pk]),
                actor=str(follow_up.created_by or follow_up.plan or ""),
                badges=tuple(badges),
            )
        )
    return entries
