"""Background work of imports, run by `cim worker`. A task picks up from the job's checkpoint, so it can rerun."""

from django_tasks import task

from cim.accounts.models import User
from cim.ingest.models import ImportJob
from cim.ingest.services import import_run


@task()
def import_job_run(*, job_id: int, user_id: int | None, dry_run: bool = False) -> dict:
    job = ImportJob.objects.get(pk=job_id)
    user = User.objects.filter(pk=user_id).first() if user_id else None
    try:
        counts = import_run(job=job, actor=user, dry_run=dry_run)
    except Exception as error:
        ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, message=str(error)[:500])
        raise
    return vars(counts)
