import django.db.models.deletion
from django.db import migrations, models

from cim.core.migration_ops import AddIndexConcurrently

# The index Django made for the foreign key, named alike on SQLite and PostgreSQL.
FULL_INDEX = "customers_customer_merged_into_id_2994ddb6"


def full_index_drop(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {FULL_INDEX}")


def full_index_create(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"CREATE INDEX{concurrently} IF NOT EXISTS {FULL_INDEX} ON customers_customer (merged_into_id)")


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY on PostgreSQL (docs/deploy.md)

    dependencies = [
        ("customers", "0012_shares"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", False)), fields=["merged_into"], name="customer_merged_into_idx"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="merged_into",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="customers.customer",
                        verbose_name="merged into",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(full_index_drop, full_index_create)],
        ),
    ]
