"""Encrypt the old and new values of the change history written in plaintext before 0002, in batches."""

from django.db import migrations

BATCH = 2000


def _columns(apps):
    from cim.core.keys import columns_of

    FieldChange = apps.get_model("audit", "FieldChange")
    return columns_of(FieldChange._meta.get_field(name) for name in ("old_value", "new_value"))


def encrypt(apps, schema_editor):
    from cim.core.keys import column_reencrypt

    for column in _columns(apps):
        column_reencrypt(column, batch=BATCH)


def decrypt(apps, schema_editor):
    from cim.core.keys import column_decrypt

    for column in _columns(apps):
        column_decrypt(column, batch=BATCH)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("audit", "0005_encrypt_field_changes")]

    operations = [migrations.RunPython(encrypt, decrypt)]
