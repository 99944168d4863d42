"""Customer care's background work, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.automation.care import care_run
from cim.core.schedule import periodic


@periodic(every=timedelta(hours=1))
@task()
def care_run_task() -> int:
    """Run the active care plans for today. Hourly, so a plan created or a worker started during the day still runs
    that day; each plan acts once a day and its greetings and call tasks are keyed, so nothing happens twice."""
    return sum(run.queued + run.tasks for run in care_run())
