"""`{% feedback_sentiment "ticket" ticket.pk %}`: the sentiment badge of one piece of feedback, where it is shown."""

from django import template

from cim.analytics.models import FeedbackSentiment
from cim.analytics.sentiment import topic_label

register = template.Library()

BADGES = {"positive": "text-bg-success", "neutral": "text-bg-secondary", "negative": "text-bg-danger"}


@register.inclusion_tag("analytics/_sentiment_badge.html")
def feedback_sentiment(source: str, object_id: int) -> dict:
    row = FeedbackSentiment.objects.filter(source=source, object_id=object_id).first()
    if row is None:
        return {"row": None}
    return {"row": row, "badge": BADGES[row.label], "topic": topic_label(row.topic) if row.topic else ""}
