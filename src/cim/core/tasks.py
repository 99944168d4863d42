"""Upkeep of the database itself, run by `cim worker`."""

from datetime import timedelta

from django.db import connection
from django_tasks import task

from cim.core.partitions import partitions_create_ahead
from cim.core.schedule import periodic


def database_statistics_refresh() -> None:
    """Give the query planner fresh table statistics, from a sample of each table, so it starts a query from the
    index that narrows it most (segment rules on scores; the customer list's newest first). PostgreSQL's autovacuum
    does this too, but only where it is switched on and a minute or more after a bulk load."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit = 1000")
        cursor.execute("ANALYZE")


@periodic(every=timedelta(days=1))
@task()
def database_statistics() -> None:
    database_statistics_refresh()


@periodic(every=timedelta(hours=6))
@task()
def monthly_partitions() -> None:
    """Keep the next months' partitions ready on PostgreSQL; rows outside them would land in the default one."""
    partitions_create_ahead()
