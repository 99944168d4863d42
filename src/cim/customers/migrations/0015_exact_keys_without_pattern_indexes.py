import cim.core.blind_index
from django.db import migrations, models

from cim.core.migration_ops import pattern_index_drop

# The name key and the keyed hashes, only ever matched exactly: (model, table, field, Django's index of the field,
# the Meta index it becomes).
KEYS = (
    (
        "customer",
        "customers_customer",
        "match_name",
        "customers_customer_match_name_5c0f2905",
        "customer_match_name_idx",
    ),
    (
        "customer",
        "customers_customer",
        "id_number_key",
        "customers_customer_id_number_key_b1a0ac7c",
        "customer_id_number_key_idx",
    ),
    ("phone", "customers_phone", "match_key", "customers_phone_match_key_0b14d81e", "phone_match_key_idx"),
    ("email", "customers_email", "match_key", "customers_email_match_key_74ee4417", "email_match_key_idx"),
)


def blind_index(kind: str, source: str, verbose_name: str) -> cim.core.blind_index.BlindIndexField:
    return cim.core.blind_index.BlindIndexField(
        blank=True, db_index=False, editable=False, kind=kind, max_length=32, source=source, verbose_name=verbose_name
    )


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY on PostgreSQL (docs/deploy.md)

    dependencies = [("customers", "0014_foreign_key_indexes_others_cover")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="match_name",
                    field=models.CharField(blank=True, editable=False, max_length=200, verbose_name="name key"),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="id_number_key",
                    field=blind_index("id_number", "id_number", "ID number key"),
                ),
                migrations.AlterField(
                    model_name="phone", name="match_key", field=blind_index("phone", "number", "match key")
                ),
                migrations.AlterField(
                    model_name="email", name="match_key", field=blind_index("email", "address", "match key")
                ),
                *(
                    migrations.AddIndex(model_name=model, index=models.Index(fields=[field], name=name))
                    for model, _table, field, _index, name in KEYS
                ),
            ],
            database_operations=[
                pattern_index_drop(table, field, index, name) for _model, table, field, index, name in KEYS
            ],
        ),
    ]
