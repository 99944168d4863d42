"""Which code a process runs: the package version and the schema it expects, compared across web and workers."""

import hashlib
from functools import cache
from importlib.metadata import version

from django.db import connection
from django.db.migrations.loader import MigrationLoader


@cache
def code_version() -> str:
    """`0.1.0+3f2a9c1e`: the package version and a digest of the newest migration of every app, so two processes
    built from different commits with different schemas never look alike."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaves = sorted(f"{app}.{name}" for app, name in graph.leaf_nodes())
    return f"{version('cim')}+{hashlib.sha256(' '.join(leaves).encode()).hexdigest()[:8]}"


def pending_migrations() -> list[str]:
    """Migrations the database has not had yet."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in set(loader.graph.nodes) - set(loader.applied_migrations))
