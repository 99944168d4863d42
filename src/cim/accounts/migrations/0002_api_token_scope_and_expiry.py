import datetime

from django.db import migrations, models
from django.utils import timezone


def existing_tokens_keep_working(apps, schema_editor):
    # Tokens issued before scopes could write, and never expired: they keep writing and now expire in 90 days,
    # so integrations do not break on upgrade but no token lives for ever.
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.update(scope="write", expires_at=timezone.now() + datetime.timedelta(days=90))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(null=True, verbose_name="expires at"),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read only"), ("write", "Read and write")],
                default="read",
                max_length=10,
                verbose_name="scope",
            ),
        ),
        migrations.RunPython(existing_tokens_keep_working, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(verbose_name="expires at"),
        ),
    ]
