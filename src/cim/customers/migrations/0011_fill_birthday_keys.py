"""Fill the keyed hashes of the birthday's month-day (solar and lunar) of the customers saved before 0010, in
batches of their own transactions, then index them and the date customers joined, concurrently on PostgreSQL so
the site keeps writing meanwhile: today's birthdays and anniversaries are found by them (cim.automation.calendar).
Filling before indexing: a column without an index is cheaper to fill."""

from django.db import migrations, models

from cim.core.migration_ops import AddIndexConcurrently

BATCH = 2000
KEYS = ("birthday_md_key", "lunar_birthday_md_key")


def fill(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    fields = [Customer._meta.get_field(name) for name in KEYS]
    last = 0
    while True:
        rows = list(
            Customer.objects.filter(pk__gt=last, birthday__isnull=False).order_by("pk").only("pk", "birthday")[:BATCH]
        )
        if not rows:
            return
        for row in rows:
            for field in fields:
                field.pre_save(row, add=False)
        Customer.objects.bulk_update(rows, KEYS)
        last = rows[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0010_birthday_keys_and_lunar_birthday")]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        AddIndexConcurrently(
            model_name="customer", index=models.Index(fields=["created_at"], name="customer_created_idx")
        ),
        AddIndexConcurrently(
            model_name="customer", index=models.Index(fields=["birthday_md_key"], name="customer_birthday_md_idx")
        ),
        AddIndexConcurrently(
            model_name="customer", index=models.Index(fields=["lunar_birthday_md_key"], name="customer_lunar_md_idx")
        ),
    ]
