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

from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

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


HEARTBEAT_SECONDS = 30.0


def worker_heartbeat(*, now: datetime | None = None) -> None:
    """Record that this worker process is alive, and forget workers silent for a day."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker=f"{socket.gethostname()}:{os.getpid()}", defaults={"seen_at": now, "version": code_version()}
    )
    WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()


def run_periodic_loop(stop: threading.Event, *, interval: float = HEARTBEAT_SECONDS, enqueue: bool = True) -> None:
    """The worker's side thread: a heartbeat, and (unless `enqueue` is off) the due jobs queued, every `interval`
    seconds until `stop` is set."""
    while not stop.is_set():
        close_old_connections()
        try:
            worker_heartbeat()
            if enqueue:
                periodic_enqueue_due()
        except Exception:  # a locked or restarting database: try again on the next round
            logger.exception("Could not queue periodic jobs")
        stop.wait(interval)
    close_old_connections()
