"""Background work of follow-ups, queued periodically by `cim worker`. Both jobs are idempotent: run late or
twice, they do their work once (see cim.activities.follow_ups)."""

from dataclasses import asdict
from datetime import timedelta

from django_tasks import task

from cim.activities.follow_ups import callback_plans_run, follow_up_reminders_send
from cim.core.schedule import periodic


@periodic(every=timedelta(minutes=1))
@task()
def follow_up_reminders() -> dict:
    """Send the reminders whose time has come."""
    return asdict(follow_up_reminders_send())


@periodic(every=timedelta(hours=1))
@task()
def callback_plans() -> list[dict]:
    """Create the follow-ups of every active call-back plan that are due."""
    return [asdict(run) for run in callback_plans_run()]
