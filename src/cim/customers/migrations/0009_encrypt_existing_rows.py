"""Encrypt the phones, emails, streets and birthdays stored in plaintext before 0008, in batches, after filling
the birthday's year and month columns from the plaintext dates."""

from django.db import migrations

BATCH = 2000
ENCRYPTED = {"customer": ["birthday", "id_number"], "phone": ["number", "raw"], "email": ["address", "raw"]}
ENCRYPTED["address"] = ["street"]


def _columns(apps):
    from cim.core.keys import columns_of

    return columns_of(
        apps.get_model("customers", model)._meta.get_field(name) for model, names in ENCRYPTED.items() for name in names
    )


def _birth_parts(apps, schema_editor):
    import datetime

    Customer = apps.get_model("customers", "Customer")
    q = schema_editor.connection.ops.quote_name
    table = q(Customer._meta.db_table)
    last = 0
    with schema_editor.connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT id, birthday FROM {table} WHERE id > %s AND birthday IS NOT NULL AND birthday <> '' "
                f"AND substr(birthday, 1, 3) <> 'v1:' ORDER BY id LIMIT %s",
                [last, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            dates = [(pk, datetime.date.fromisoformat(str(value)[:10])) for pk, value in rows]
            cursor.executemany(
                f"UPDATE {table} SET birth_year = %s, birth_month = %s WHERE id = %s",
                [(day.year, day.month, pk) for pk, day in dates],
            )
            last = rows[-1][0]


def encrypt(apps, schema_editor):
    from cim.core.keys import column_reencrypt

    _birth_parts(apps, schema_editor)
    for column in _columns(apps):
        column_reencrypt(column, batch=BATCH)


def decrypt(apps, schema_editor):
    from cim.core.keys import column_decrypt

    for column in _columns(apps):
        column_decrypt(column, batch=BATCH)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("customers", "0008_encrypt_sensitive_fields")]

    operations = [migrations.RunPython(encrypt, decrypt)]
