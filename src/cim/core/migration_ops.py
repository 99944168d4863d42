"""Migration operations that are safe on a live PostgreSQL (docs/deploy.md, "Migrations on a live database"),
and the lock timeout every migration runs under there."""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently as PostgresAddIndexConcurrently
from django.contrib.postgres.operations import RemoveIndexConcurrently as PostgresRemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex, RunPython


class _CollectAnywhere:
    """`sqlmigrate` only collects the SQL, so it may run inside a transaction (the migration-safety test does)."""

    def _ensure_not_in_transaction(self, schema_editor):
        if not schema_editor.collect_sql:
            super()._ensure_not_in_transaction(schema_editor)


class AddIndexConcurrently(_CollectAnywhere, PostgresAddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so writes to a big table go on while it is built; a plain index
    on SQLite. The migration must say `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(_CollectAnywhere, PostgresRemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL; a plain drop on SQLite. The migration must say `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


def foreign_key_index_drop(table: str, column: str, name: str) -> RunPython:
    """Drop the index Django made for a foreign key whose column another index or unique constraint already leads
    with: every write paid for it and no query needed it. CONCURRENTLY on PostgreSQL (the migration says
    `atomic = False`); backwards, the index is built again. The model's field says `db_index=False`."""

    def concurrently(schema_editor) -> str:
        return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""

    def drop(apps, schema_editor):
        schema_editor.execute(f"DROP INDEX{concurrently(schema_editor)} IF EXISTS {name}")

    def create(apps, schema_editor):
        schema_editor.execute(f"CREATE INDEX{concurrently(schema_editor)} IF NOT EXISTS {name} ON {table} ({column})")

    return RunPython(drop, create)


def pattern_index_drop(table: str, column: str, field_index: str, name: str) -> RunPython:
    """Keep only the plain index of a CharField Django indexed for its `db_index`: on PostgreSQL it also built a
    `varchar_pattern_ops` twin (`<field_index>_like`) for LIKE, which every write paid for and no query of an
    exact key reads. The twin is dropped CONCURRENTLY (the migration says `atomic = False`) and the plain index is
    renamed to `name`, the model's Meta index; SQLite, which cannot rename an index, builds it again. Backwards,
    both come back."""

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {field_index}_like")
            schema_editor.execute(f"ALTER INDEX {field_index} RENAME TO {name}")
        else:
            schema_editor.execute(f"DROP INDEX {field_index}")
            schema_editor.execute(f"CREATE INDEX {name} ON {table} ({column})")

    def create(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER INDEX {name} RENAME TO {field_index}")
            schema_editor.execute(
                f"CREATE INDEX CONCURRENTLY {field_index}_like ON {table} ({column} varchar_pattern_ops)"
            )
        else:
            schema_editor.execute(f"DROP INDEX {name}")
            schema_editor.execute(f"CREATE INDEX {field_index} ON {table} ({column})")

    return RunPython(drop, create)


def lock_timeout_set(sender, using, **kwargs) -> None:
    """Before migrating on PostgreSQL: a statement that waits for a lock longer than CIM_MIGRATION_LOCK_TIMEOUT
    fails instead of queueing every query of the running site behind it; run the migration again later."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [settings.CIM_MIGRATION_LOCK_TIMEOUT])
