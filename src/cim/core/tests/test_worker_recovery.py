"""A job whose worker died while running it is queued again; one whose worker still beats is left alone."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from django_tasks_rq.backend import Job as RQJob
from rq.job import JobStatus
from rq.registry import StartedJobRegistry
from rq.worker import SimpleWorker

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


@pytest.fixture
def rq_queue(settings):
    """Jobs on a real Redis (a database of its own), as `cim worker` runs them in production."""
    url = "redis://127.0.0.1:6379/14"
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_rq"]
    settings.RQ_QUEUES = {"default": {"URL": url}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    queue = django_rq.get_queue("default", job_class=RQJob)
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def _started_on_rq(queue, worker: str) -> RQJob:
    """A job a worker took off the queue and began: RQ's own bookkeeping, up to running the function."""
    job = RQJob.fetch(segments_refresh_all.enqueue().id, connection=queue.connection)
    queue.remove(job.id)
    rq_worker = SimpleWorker([queue], connection=queue.connection, name=worker, job_class=RQJob)
    rq_worker.prepare_execution(job)
    rq_worker.prepare_job_execution(job)
    return job


def test_rq_jobs_of_silent_workers_go_back_to_the_queue(db, rq_queue):
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker="alive:1", seen_at=now)
    kept, dead = _started_on_rq(rq_queue, "alive:1"), _started_on_rq(rq_queue, "killed:2")

    assert tasks_recover_abandoned(now=now) == 1
    assert rq_queue.get_job_ids() == [dead.id]
    assert dead.get_status(refresh=True) == JobStatus.QUEUED
    assert kept.get_status(refresh=True) == JobStatus.STARTED
    assert StartedJobRegistry(queue=rq_queue).get_job_ids(cleanup=False) == [kept.id]
    assert tasks_recover_abandoned(now=now) == 0
