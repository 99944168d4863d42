from django.db import migrations

from cim.core.partitions import table_partition_by_month


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table_partition_by_month("audit_auditevent", "at")


class Migration(migrations.Migration):
    """Audit events partitioned by month on PostgreSQL (cim.core.partitions)."""

    atomic = False  # the new keys are built CONCURRENTLY, beside the running site

    dependencies = [("audit", "0007_foreign_keys_into_partitioned_tables")]

    operations = [migrations.RunPython(partition, atomic=False, elidable=False)]
