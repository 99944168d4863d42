import threading

import prometheus_client
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django_tasks import task_backends
from django_tasks_rq import RQBackend

from cim.core.schedule import run_periodic_loop, worker_heartbeat, worker_id


class Command(BaseCommand):
    """`cim worker`: runs the background jobs of the configured backend — django-tasks-db's worker, or an RQ worker
    when jobs queue on Redis — plus a thread that beats the heartbeat, puts back jobs of dead workers and queues
    periodic jobs."""

    help = "Run the background task worker (processes queued tasks until stopped with Ctrl-C or SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("--queue-name", default="default", help="queues to work on, comma-separated")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after this many jobs (database backend)")
        parser.add_argument("--no-periodic", action="store_true", help="do not queue periodic jobs from this worker")
        parser.add_argument(
            "--metrics-listen",
            default="",
            metavar="HOST:PORT",
            help="serve this worker's Prometheus metrics there (for workers on machines without the web server)",
        )

    def handle(self, *args, queue_name, batch, max_tasks, no_periodic, metrics_listen, verbosity, **options):
        if metrics_listen:
            host, _, port = metrics_listen.rpartition(":")
            prometheus_client.start_http_server(int(port), addr=host or "127.0.0.1")
        stop = threading.Event()
        if batch:
            worker_heartbeat()  # announced once (a batch run has no heartbeat thread), so its jobs count as taken
        else:
            threading.Thread(
                target=run_periodic_loop,
                args=(stop,),
                kwargs={"enqueue": not no_periodic},
                name="cim-periodic",
                daemon=True,
            ).start()
        try:
            if isinstance(task_backends["default"], RQBackend):
                # SimpleWorker runs each job in this process, as the database worker does: no forked child sharing
                # the parent's database connections, and the job timings land in this process's metrics.
                call_command(
                    "rqworker",
                    *queue_name.split(","),
                    job_class="django_tasks_rq.Job",
                    worker_class="rq.SimpleWorker",
                    # Named after its heartbeat: a job it started is known to be abandoned when the beats stop.
                    name=worker_id(),
                    burst=batch,
                    verbosity=verbosity,
                )
            else:
                call_command(
                    "db_worker",
                    queue_name=queue_name,
                    batch=batch,
                    max_tasks=max_tasks,
                    reload=False,
                    worker_id=worker_id(),
                    startup_delay=not batch,
                    verbosity=verbosity,
                )
        finally:
            stop.set()
