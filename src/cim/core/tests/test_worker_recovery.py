"""A job whose worker died while running it is queued again; one whose worker still beats is left alone."""

from datetime import timedelta

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from cim.core.models import WorkerHeartbeat
from cim.core.schedule import tasks_recover_abandoned, worker_silence
from cim.segments.tasks import segments_refresh_all


def _running(worker: str) -> DBTaskResult:
    result = segments_refresh_all.enqueue()
    DBTaskResult.objects.filter(pk=result.id).update(status="RUNNING", started_at=timezone.now(), worker_ids=[worker])
    return DBTaskResult.objects.get(pk=result.id)


def test_only_jobs_of_silent_workers_go_back_to_the_queue(db):
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker="alive:1", seen_at=now)
    WorkerHeartbeat.objects.create(worker="silent:2", seen_at=now - worker_silence() - timedelta(seconds=1))
    kept, dead, never_seen = _running("alive:1"), _running("silent:2"), _running("gone:3")

    assert tasks_recover_abandoned(now=now) == 2
    statuses = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert statuses[kept.pk] == "RUNNING"
    assert statuses[dead.pk] == statuses[never_seen.pk] == "READY"
    assert tasks_recover_abandoned(now=now) == 0
