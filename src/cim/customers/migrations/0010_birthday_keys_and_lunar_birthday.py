import cim.core.blind_index
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0009_encrypt_existing_rows"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="birthday_md_key",
            field=cim.core.blind_index.DerivedIndexField(
                blank=True,
                db_index=False,
                derive="cim.automation.calendar.solar_month_day",
                editable=False,
                kind="birthday_md",
                max_length=32,
                source="birthday",
                verbose_name="birthday key",
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="keeps_lunar_birthday",
            field=models.BooleanField(default=False, verbose_name="keeps a lunar birthday"),
        ),
        migrations.AddField(
            model_name="customer",
            name="lunar_birthday_md_key",
            field=cim.core.blind_index.DerivedIndexField(
                blank=True,
                db_index=False,
                derive="cim.automation.calendar.lunar_month_day",
                editable=False,
                kind="lunar_birthday_md",
                max_length=32,
                source="birthday",
                verbose_name="lunar birthday key",
            ),
        ),
    ]
