"""Background work of messaging, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.automation.messaging import messages_deliver
from cim.core.schedule import periodic


@periodic(every=timedelta(minutes=1))
@task()
def messages_deliver_task() -> int:
    """Send due messages; queued after every commit that queues messages, and every minute (deferred ones)."""
    return messages_deliver().sent
