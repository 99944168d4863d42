"""Encrypt, in batches, the values stored in plaintext before 0004_encrypt_form_submissions (docs/encryption.md)."""

from django.db import migrations

from cim.core.keys import encrypt_existing_rows


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("ingest", "0004_encrypt_form_submissions")]

    operations = [encrypt_existing_rows("ingest", "formsubmission", ['raw'])]
