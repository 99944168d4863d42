import threading

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorker

from cim.core.schedule import run_periodic_loop


class Command(DatabaseWorker):
    """`cim worker`: the django-tasks-db worker under CIM's name, with all of `db_worker`'s options
    (--queue-name, --interval, --batch, --max-tasks, ...), plus the thread that queues periodic jobs."""

    help = "Run the background task worker (processes queued tasks until stopped with Ctrl-C or SIGTERM)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--no-periodic", action="store_true", help="do not queue periodic jobs from this worker")

    def handle(self, *args, no_periodic: bool = False, **options):
        stop = threading.Event()
        if not no_periodic and not options.get("batch"):
            threading.Thread(target=run_periodic_loop, args=(stop,), name="cim-periodic", daemon=True).start()
        try:
            return super().handle(*args, **options)
        finally:
            stop.set()
