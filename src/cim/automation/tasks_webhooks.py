"""Background work of webhooks, run by `cim worker`: sending (queued after every dispatch that recorded
deliveries, and every 10 seconds for retries) and pruning the delivery log."""

from datetime import timedelta

from django_tasks import task

from cim.automation.webhook_sender import deliveries_send
from cim.automation.webhooks import deliveries_prune
from cim.core.schedule import periodic


@periodic(every=timedelta(seconds=10))
@task()
def webhooks_send_task() -> int:
    """Send the webhook deliveries that are due, fresh ones first; returns how many attempts were made."""
    return deliveries_send().sent


@periodic(every=timedelta(days=1))
@task()
def webhooks_prune_task() -> int:
    """Forget deliveries made more than 30 days ago."""
    return deliveries_prune()
