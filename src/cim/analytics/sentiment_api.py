"""The feedback API: sentiment shares by period, negative feedback per topic and the top keywords, as the feedback
page shows them; and the newest negative texts on the customers the caller may see."""

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Schema
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.analytics.sentiment import PERIODS, feedback_summary, latest_negative
from cim.customers.services import PermissionDenied

router = Router(tags=["analytics"])


class PeriodOut(Schema):
    period: date = Field(description="First day of the week (Monday) or month")
    positive: int
    neutral: int
    negative: int


class TopicTrendOut(Schema):
    topic: str = Field(description='A key of the topic taxonomy; "" when no topic word occurs')
    label: str
    negative: list[int] = Field(description="Negative texts per period, in the order of `shares`")


class KeywordOut(Schema):
    keyword: str
    texts: int


class NegativeOut(Schema):
    source: str = Field(description="ticket, survey or interaction")
    object_id: int
    customer: str = Field(description="Customer number")
    topic: str
    topic_label: str
    score: float = Field(description="-1 (negative) … 1 (positive)")
    keywords: list[str]
    written_at: datetime
    text: str = Field(description="The first 200 characters")
    url: str = Field(description="The page where it was written")


class SentimentOut(Schema):
    period: str
    since: datetime
    totals: dict[str, int] = Field(description="Texts per label over the whole window")
    shares: list[PeriodOut]
    negative_by_topic: list[TopicTrendOut]
    keywords: list[KeywordOut]
    negative_keywords: list[KeywordOut]
    latest_negative: list[NegativeOut]


@router.get(
    "/analytics/sentiment",
    response=SentimentOut,
    summary="Feedback sentiment: shares per period, negative feedback by topic, keywords, latest negative texts",
)
def sentiment(request, period: str = "week", periods: int = 12):
    if not has_perm(request.auth, Perm.ANALYTICS_VIEW):
        raise PermissionDenied(Perm.ANALYTICS_VIEW)
    if period not in PERIODS:
        raise ValidationError({"period": _("Choose week or month.")})
    if not 1 <= periods <= 104:
        raise ValidationError({"periods": _("Choose between 1 and 104 periods.")})
    summary = feedback_summary(period=period, periods=periods)
    return {
        "period": summary.period,
        "since": summary.since,
        "totals": summary.totals,
        "shares": summary.shares,
        "negative_by_topic": [
            {"topic": key, "label": summary.topic_labels.get(key, key), "negative": counts}
            for key, counts in summary.negative_by_topic.items()
        ],
        "keywords": [{"keyword": word, "texts": n} for word, n in summary.keywords],
        "negative_keywords": [{"keyword": word, "texts": n} for word, n in summary.negative_keywords],
        "latest_negative": [
            {**vars(item), "customer": item.customer_number} for item in latest_negative(user=request.auth)
        ],
    }
