"""Background work of customer service, run by `cim worker`."""

from dataclasses import asdict
from datetime import timedelta

from django_tasks import task

from cim.core.schedule import periodic
from cim.service.services import tickets_escalate_overdue


@periodic(every=timedelta(minutes=5))
@task()
def tickets_sla_check() -> dict:
    """Escalate the tickets that missed a deadline since the last run, and tell the people handling them."""
    return asdict(tickets_escalate_overdue())
