"""Encrypt, in batches, the values stored in plaintext before 0005_encrypt_merge_snapshots (docs/encryption.md)."""

from django.db import migrations

from cim.core.keys import encrypt_existing_rows


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("quality", "0005_encrypt_merge_snapshots")]

    operations = [encrypt_existing_rows("quality", "mergerecord", ['customers_before', 'moved', 'removed'])]
