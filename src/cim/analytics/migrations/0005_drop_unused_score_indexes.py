from django.db import migrations

from cim.core.migration_ops import RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY on PostgreSQL (docs/deploy.md)

    dependencies = [
        ("analytics", "0004_score_rule_indexes"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="customerscore", name=name)
        for name in ("score_rfm_segment_idx", "score_churn_risk_idx", "score_cluster_idx")
    ]
