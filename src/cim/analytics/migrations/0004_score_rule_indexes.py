from django.db import migrations, models

from cim.core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY on PostgreSQL (docs/deploy.md)

    dependencies = [
        ("analytics", "0003_order_totals_due"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customerscore",
            index=models.Index(fields=["total_spent"], name="score_total_spent_idx"),
        ),
        AddIndexConcurrently(
            model_name="customerscore",
            index=models.Index(fields=["value_segment"], name="score_value_segment_idx"),
        ),
    ]
