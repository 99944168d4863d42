"""Background work of automation rules, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.automation.rules import rule_runs_execute, rules_dates_run
from cim.core.schedule import periodic


@periodic(every=timedelta(seconds=30))
@task()
def rule_runs_execute_task() -> int:
    """Carry rule runs forward: queued when the events consumer records runs, and every half minute for the waits
    that have ended."""
    return rule_runs_execute()


@periodic(every=timedelta(hours=1))
@task()
def rules_dates_task() -> int:
    """Start the date rules' runs of the day: hourly, each rule evaluated once per day."""
    return rules_dates_run()
