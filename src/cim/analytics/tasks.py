"""Background analytics, run by `cim worker`. Order totals, RFM, lifecycle stages and segments are refreshed
together, hourly, by cim.segments.tasks."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django_tasks import task

from cim.analytics.basket import rules_refresh
from cim.analytics.churn import churn_refresh
from cim.analytics.clusters import clusters_refresh
from cim.analytics.schedules import report_schedules_send_due
from cim.analytics.sentiment import HOURLY_LIMIT, sentiment_refresh
from cim.core.schedule import periodic


@periodic(every=timedelta(days=1))
@task()
def churn_risk_refresh() -> int:
    """Score every customer's churn risk and CLV again (recency grows every day) and give the valuable ones at risk
    a follow-up; returns how many follow-ups were made."""
    return churn_refresh(create_tasks=True).tasks


@periodic(every=timedelta(hours=1))
@task()
def feedback_sentiment_refresh() -> int:
    """Analyse the feedback written or changed since the last run: its sentiment, keywords and topic."""
    return sentiment_refresh(limit=HOURLY_LIMIT).analysed


@periodic(every=timedelta(days=1))
@task()
def customer_clusters_refresh() -> int:
    """Re-cluster the customers who bought (their orders move every day); returns the number of clusters."""
    try:
        return clusters_refresh().k
    except ValidationError:
        return 0  # too few customers have bought to form clusters yet


@periodic(every=timedelta(days=1))
@task()
def bought_together_refresh() -> int:
    """Mine the frequently-bought-together rules again; returns how many were kept."""
    return rules_refresh().rules


@periodic(every=timedelta(hours=1))
@task()
def scheduled_reports_send() -> int:
    """E-mail the scheduled reports due for their day, week or month; each period is sent at most once."""
    return report_schedules_send_due()
