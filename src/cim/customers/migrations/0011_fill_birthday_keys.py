"""Fill the keyed hashes of the birthday's month-day (solar and lunar) of the customers saved before 0010, in
batches: today's birthdays are found by them (cim.automation.calendar)."""

from django.db import migrations

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

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
