from django.db import migrations, models

from cim.core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY on PostgreSQL (docs/deploy.md)

    dependencies = [
        ("activities", "0002_orders_interactions_follow_ups"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="interaction",
            index=models.Index(fields=["occurred_at"], name="interaction_time_idx"),
        ),
    ]
