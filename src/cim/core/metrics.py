"""Prometheus metrics at `/metrics`: what an operator graphs and alerts on.

Requests (rate, latency per route, errors) are counted by django-prometheus' middleware in each web process; under
gunicorn with `PROMETHEUS_MULTIPROC_DIR` set, every process writes its samples there and a scrape adds them up.
Background jobs are timed in the worker processes, which share the same folder on one machine or expose their own
port (`cim worker --metrics-listen`) on others. The rest is read from the database or Redis at scrape time, so it is
the same whichever process is asked: queue depth, imports in progress and database connections in use.
"""

import hmac
import time

import prometheus_client
from django.conf import settings
from django.db import connection
from django.db.models import Count, Sum
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django_tasks import TaskResultStatus, task_backends
from django_tasks.signals import task_finished, task_started
from django_tasks_db.models import DBTaskResult
from django_tasks_rq import RQBackend
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

from cim.accounts.roles import Role
from cim.ingest.models import ImportJob
from cim.quality.models import DuplicateCandidate


class DatabaseCollector:
    """Figures read from the database when Prometheus scrapes."""

    def collect(self):
        yield from self._tasks()
        yield from self._imports()
        duplicates = GaugeMetricFamily("cim_duplicate_candidates_open", "Duplicate pairs waiting for review.")
        duplicates.add_metric([], DuplicateCandidate.objects.filter(status=DuplicateCandidate.Status.OPEN).count())
        yield duplicates
        if connection.vendor == "postgresql":
            yield self._connections()

    def _tasks(self):
        depth = GaugeMetricFamily("cim_task_queue_depth", "Background jobs waiting to run.", labels=["queue"])
        for queue, waiting in _queue_depths().items():
            depth.add_metric([queue], waiting)
        yield depth

    def _imports(self):
        running = GaugeMetricFamily("cim_imports_running", "Imports and dry runs in progress.", labels=["kind"])
        rows = GaugeMetricFamily("cim_import_rows_done", "Rows processed by the imports in progress.", labels=["kind"])
        active = (
            ImportJob.objects.filter(status__in=[ImportJob.Status.RUNNING, ImportJob.Status.CHECKING])
            .values("kind")
            .annotate(n=Count("id"), done=Sum("rows_done"))
            .order_by()
        )
        for row in active:
            running.add_metric([row["kind"]], row["n"])
            rows.add_metric([row["kind"]], row["done"] or 0)
        return running, rows

    def _connections(self):
        family = GaugeMetricFamily(
            "cim_db_connections", "Connections to CIM's PostgreSQL database, by state.", labels=["state"]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() GROUP BY 1"
            )
            for state, count in cursor.fetchall():
                family.add_metric([state], count)
        family.add_metric(["max"], _max_connections())
        return family


def _queue_depths() -> dict[str, int]:
    backend = task_backends["default"]
    if isinstance(backend, RQBackend):
        return {queue.name: queue.count for queue in backend._get_queues()}
    ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY, backend_name=backend.alias)
    return dict(ready.values_list("queue_name").annotate(n=Count("id")).order_by())


# Observed in the worker processes, from django-tasks' signals, whichever backend runs the jobs.
TASK_SECONDS = prometheus_client.Histogram(
    "cim_task_duration_seconds",
    "Background jobs by task and outcome, and how long they ran.",
    ["task", "status"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf")),
)
_started: dict[str, float] = {}


@receiver(task_started)
def _task_started(sender, task_result, **kwargs):
    _started[task_result.id] = time.monotonic()


@receiver(task_finished)
def _task_finished(sender, task_result, **kwargs):
    began = _started.pop(task_result.id, None)
    if began is not None:
        TASK_SECONDS.labels(task_result.task.module_path, task_result.status.lower()).observe(time.monotonic() - began)


def _max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def _allowed(request: HttpRequest) -> bool:
    """A scraper with the bearer token, or a signed-in administrator looking."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), settings.CIM_METRICS_TOKEN.encode()):
        return True
    user = request.user
    return user.is_authenticated and user.is_active and user.role == Role.ADMINISTRATOR


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    processes = prometheus_client.REGISTRY
    if settings.PROMETHEUS_MULTIPROC_DIR:
        processes = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    database = prometheus_client.CollectorRegistry()
    database.register(DatabaseCollector())
    body = prometheus_client.generate_latest(processes) + prometheus_client.generate_latest(database)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
