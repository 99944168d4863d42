"""Background work of automation, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.automation.events import events_dispatch, events_prune
from cim.core.schedule import periodic


@periodic(every=timedelta(seconds=30))
@task()
def events_dispatch_task() -> int:
    """Hand new events to rules and webhooks; queued after every commit that publishes, and every half minute."""
    return events_dispatch().events


@periodic(every=timedelta(days=1))
@task()
def events_prune_task() -> int:
    """Forget events dispatched a month ago."""
    return events_prune()
