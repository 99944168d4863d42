"""Campaign work of the worker: starting scheduled campaigns, the A/B test's winner, and crediting orders."""

from datetime import timedelta

from django_tasks import task

from cim.automation.campaigns import campaign_conversions_credit, campaigns_advance
from cim.core.schedule import periodic


@periodic(every=timedelta(minutes=1))
@task()
def campaigns_advance_task() -> int:
    """Start due campaigns, queue their messages, pick winners after the test period; also queued on start."""
    return campaigns_advance().queued


@periodic(every=timedelta(minutes=10))
@task()
def campaign_conversions_task() -> int:
    """Credit the orders placed after clicks on campaign emails."""
    return campaign_conversions_credit()
