"""Messages on the customer's timeline (the 360° page): what was sent on which channel, and what became of it."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.timeline import Cursor, TimelineEntry, older_than, timeline_source
from cim.automation.models import Message
from cim.automation.models.messages import MessageStatus


@timeline_source(
    "message", gettext_lazy("Messages"), rows=lambda customer_id: Message.objects.filter(customer_id=customer_id)
)
def message_entries(*, rows: QuerySet[Message], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    messages = (
        rows.filter(older_than(before, "message", at="created_at"))
        .select_related("template", "customer")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for message in messages:
        badges = [message.get_status_display()]
        if message.status == MessageStatus.SUPPRESSED and message.reason:
            badges.append(message.get_reason_display())
        if message.opened_at:
            badges.append(_("Opened"))
        if message.clicked_at:
            badges.append(_("Clicked"))
        entries.append(
            TimelineEntry(
                at=message.created_at,
                kind="message",
                key=message.pk,
                title=" · ".join(
                    filter(None, [message.get_channel_display(), message.template.name if message.template else ""])
                ),
                detail=" · ".join(filter(None, [message.get_purpose_display(), message.origin])),
                url=reverse("automation:message_list") + f"?customer={message.customer.number}",
                badges=badges,
            )
        )
    return entries
