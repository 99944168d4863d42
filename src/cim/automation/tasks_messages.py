"""Background work of messaging, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.automation.messaging import messages_deliver
from cim.core.schedule import periodic


@periodic(every=timedelta(minutes=1))
@task()
def messages_deliver_task() -> int:
    """Send due messages; queued after every commit that queues messages, and every minute (deferred ones). A run
    stops after its limit so other jobs get their turn, and queues the next one when there may be more."""
    run = messages_deliver()
    if run.more:
        messages_deliver_task.enqueue()
    return run.sent
