"""The feedback page: sentiment shares by period, negative feedback by topic, top keywords and the latest
negative texts. Reads only; the hourly task (or `cim analytics sentiment`) analyses new feedback."""

from django.shortcuts import render

from cim.accounts.roles import Perm
from cim.analytics.models import FeedbackSentiment
from cim.analytics.sentiment import PERIODS, feedback_summary, latest_negative
from cim.core.views import page


@page(perm=Perm.ANALYTICS_VIEW)
def feedback_view(request):
    period = request.GET.get("period", "week")
    if period not in PERIODS:
        period = "week"
    summary = feedback_summary(period=period)
    total = sum(summary.totals.values())
    context = {
        "nav": "analytics",
        "period": period,
        "summary": summary,
        "total": total,
        "labels": [
            (label.value, label.label, summary.totals[label.value], summary.totals[label.value] / total if total else 0)
            for label in FeedbackSentiment.Label
        ],
        "topics": [
            (key, summary.topic_labels.get(key, key), sum(counts)) for key, counts in summary.negative_by_topic.items()
        ],
        "latest": latest_negative(user=request.user),
        "chart": {
            "periods": summary.periods,
            "shares": summary.shares,
            "labels": {label.value: str(label.label) for label in FeedbackSentiment.Label},
            "topics": [
                {"key": key, "label": summary.topic_labels.get(key, key), "counts": counts}
                for key, counts in summary.negative_by_topic.items()
            ],
        },
    }
    return render(request, "analytics/feedback.html", context)
