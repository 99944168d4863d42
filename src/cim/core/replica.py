"""Read-heavy work on a streaming replica: exports, analytics and duplicate scans read from the database at
`CIM_DATABASE_REPLICA_URL` when one is set, so they never slow the primary that serves pages and takes writes.

Only code inside `replica_reads()` reads from the replica; pages, the API and every service stay on the primary,
which they must (a page reads what it just wrote, and a replica may lag a little). Writes always go to the
primary, also inside the block.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import connections

REPLICA = "replica"
_reading: ContextVar[bool] = ContextVar("cim_replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def read_alias() -> str:
    """The database the current block reads from."""
    return REPLICA if _reading.get() and REPLICA in settings.DATABASES else "default"


def read_connection():
    """The connection for raw reads in the current block (`read_connection().cursor()`)."""
    return connections[read_alias()]


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two copies

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
