from django.db import migrations

import cim.core.blind_index


def fill_match_keys(apps, schema_editor):
    for model_name, source, kind in (("Phone", "number", "phone"), ("Email", "address", "email")):
        model = apps.get_model("customers", model_name)
        rows = [
            (cim.core.blind_index.blind_index(kind, value), pk)
            for pk, value in model.objects.values_list("pk", source).iterator()
        ]
        with schema_editor.connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {model._meta.db_table} SET match_key = %s WHERE id = %s", rows)


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0002_external_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="phone",
            name="match_key",
            field=cim.core.blind_index.BlindIndexField(
                default="", kind="phone", source="number", verbose_name="match key"
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="email",
            name="match_key",
            field=cim.core.blind_index.BlindIndexField(
                default="", kind="email", source="address", verbose_name="match key"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_match_keys, migrations.RunPython.noop),
    ]
