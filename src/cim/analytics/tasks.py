"""Background analytics, run by `cim worker`."""

from datetime import timedelta

from django_tasks import task

from cim.analytics.lifecycle import lifecycle_refresh
from cim.core.schedule import periodic


@periodic(every=timedelta(hours=6))
@task()
def lifecycle_stages_refresh() -> int:
    """Move customers to the stage their orders say (a customer's orders age even when nothing is written)."""
    return lifecycle_refresh().changed
