"""Periodic background jobs (reminders, SLA checks, recurring call-backs): registered here, queued by `cim worker`.

Every worker process runs the same small loop; a compare-and-set on `PeriodicRun` lets exactly one of them queue
each due job, so any number of workers on any number of machines queue it once. Jobs must be idempotent: a job
queued late or twice (a worker killed between queueing and running) does its work once.
"""

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django_tasks import TaskResultStatus, task_backends
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult
from django_tasks_rq import RQBackend
from django_tasks_rq.backend import Job as RQJob
from rq.job import JobStatus
from rq.registry import StartedJobRegistry

from cim.core.models import PeriodicRun, WorkerHeartbeat
from cim.core.version import code_version

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    task: object  # a django_tasks Task taking no arguments


PERIODIC: dict[str, Periodic] = {}


def periodic(every: timedelta):
    """Decorator for a django-tasks `@task()`: queue it every `every` from `cim worker`."""

    def register(task):
        name = f"{task.func.__module__}.{task.func.__name__}"
        PERIODIC[name] = Periodic(name=name, every=every, task=task)
        return task

    return register


def periodic_enqueue_due(*, now: datetime | None = None) -> list[str]:
    """Queue every periodic job whose interval has passed; returns the names this process queued."""
    autodiscover_modules("tasks")  # each app's tasks module registers its periodic jobs
    now = now or timezone.now()
    queued = []
    for job in PERIODIC.values():
        with transaction.atomic():  # a queue that cannot be reached gives the claim back, for the next round
            if _claim(job, now):
                job.task.enqueue()
                queued.append(job.name)
    return queued


def _claim(job: Periodic, now: datetime) -> bool:
    claimed = PeriodicRun.objects.filter(name=job.name, queued_at__lte=now - job.every).update(queued_at=now)
    if claimed:
        return True
    try:
        with transaction.atomic():
            PeriodicRun.objects.create(name=job.name, queued_at=now)
    except IntegrityError:
        return False  # already there and not due, or another worker created it just now
    return True


def heartbeat_seconds() -> float:
    return settings.CIM_WORKER_HEARTBEAT_SECONDS


def worker_silence() -> timedelta:
    """How long a worker may be silent before it counts as gone: four missed beats."""
    return timedelta(seconds=4 * heartbeat_seconds())


def worker_id() -> str:
    """This worker process: its heartbeat's name, and the id it claims jobs under."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def worker_heartbeat(*, now: datetime | None = None) -> None:
    """Record that this worker process is alive, and forget workers silent for a day."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker=worker_id(), defaults={"seen_at": now, "version": code_version()})
    WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()


def tasks_recover_abandoned(*, now: datetime | None = None) -> int:
    """Put back in the queue the jobs whose worker died while running them (killed, or its machine lost): a job
    counts as abandoned when the worker that claimed it has not beaten its heartbeat for `worker_silence()`. Jobs
    are idempotent and resume from their checkpoints, so running one again finishes it; returns how many."""
    now = now or timezone.now()
    alive = set(WorkerHeartbeat.objects.filter(seen_at__gte=now - worker_silence()).values_list("worker", flat=True))
    backend = task_backends["default"]
    if isinstance(backend, RQBackend):
        abandoned = _rq_requeue_abandoned(backend, alive)
    elif isinstance(backend, DatabaseBackend):
        abandoned = _db_requeue_abandoned(alive)
    else:
        return 0
    if abandoned:
        logger.warning("Requeued %d background job(s) abandoned by a stopped worker", abandoned)
    return abandoned


def _db_requeue_abandoned(alive: set[str]) -> int:
    running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).values_list("pk", "worker_ids")
    abandoned = [pk for pk, workers in running if not workers or workers[-1] not in alive]
    # Conditional on still running: a job that finished meanwhile stays finished.
    return DBTaskResult.objects.filter(pk__in=abandoned, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.READY, started_at=None
    )


def _rq_requeue_abandoned(backend: RQBackend, alive: set[str]) -> int:
    """RQ itself gives up on a started job only when its timeout has passed (hours, for an import), and then
    fails it. Each `cim worker` names its RQ worker after its heartbeat, so a job whose worker went silent is
    known at once and queued again."""
    abandoned = 0
    for queue in backend._get_queues():
        registry = StartedJobRegistry(queue=queue)
        for job in RQJob.fetch_many(registry.get_job_ids(cleanup=False), connection=queue.connection):
            if job is None or job.get_status() != JobStatus.STARTED or job.worker_name in alive:
                continue
            registry.remove_executions(job)
            queue.enqueue_job(job)
            abandoned += 1
    return abandoned


def run_periodic_loop(stop: threading.Event, *, enqueue: bool = True) -> None:
    """The worker's side thread, every heartbeat until `stop` is set: the heartbeat, abandoned jobs put back in the
    queue, and (unless `enqueue` is off) the due periodic jobs queued."""
    while not stop.is_set():
        close_old_connections()
        try:
            worker_heartbeat()
            tasks_recover_abandoned()
            if enqueue:
                periodic_enqueue_due()
        except Exception:  # a locked or restarting database: try again on the next round
            logger.exception("Could not queue periodic jobs")
        stop.wait(heartbeat_seconds())
    close_old_connections()
