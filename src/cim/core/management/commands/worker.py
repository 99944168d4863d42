from django_tasks_db.management.commands.db_worker import Command as DatabaseWorker


class Command(DatabaseWorker):
    """`cim worker`: the django-tasks-db worker under CIM's name, with all of `db_worker`'s options
    (--queue-name, --interval, --batch, --max-tasks, ...)."""

    help = "Run the background task worker (processes queued tasks until stopped with Ctrl-C or SIGTERM)."
