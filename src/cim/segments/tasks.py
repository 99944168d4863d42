"""Background refresh, run by `cim worker`: scores, lifecycle stages, then every segment and its tag."""

from datetime import timedelta

from django_tasks import task

from cim.core.schedule import periodic
from cim.segments.pipeline import customer_analytics_refresh


@periodic(every=timedelta(hours=1))
@task()
def segments_refresh_all() -> int:
    """Keep order totals, RFM, lifecycle stages, segment memberships and tag rules current."""
    return customer_analytics_refresh().changed_members
