"""Daily privacy jobs, run by `cim worker`: the retention rules."""

from datetime import timedelta

from django_tasks import task

from cim.core.schedule import periodic
from cim.privacy.retention import retention_run_all


@periodic(every=timedelta(days=1))
@task()
def privacy_retention_daily() -> int:
    """Apply every enabled retention rule; returns how many rows they changed."""
    return sum(retention_run_all().values())
