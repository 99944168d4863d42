from django.db import migrations

# Business minutes (a business day is nine hours by default): urgent 30 min / 4 h, high 1 h / 1 day,
# normal 4 h / 3 days, low 1 day / 5 days. Administrators change them on the SLA settings page.
DEFAULTS = [
    ("urgent", 30, 240),
    ("high", 60, 540),
    ("normal", 240, 1620),
    ("low", 480, 2700),
]


def seed(apps, schema_editor):
    SlaPolicy = apps.get_model("service", "SlaPolicy")
    for priority, response, resolution in DEFAULTS:
        SlaPolicy.objects.get_or_create(
            priority=priority, defaults={"first_response_minutes": response, "resolution_minutes": resolution}
        )


class Migration(migrations.Migration):
    dependencies = [("service", "0001_tickets_slas_and_surveys")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
