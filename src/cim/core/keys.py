"""Key management of the encrypted columns: how many rows each key holds, and rotation to the current key.

Both walk every encrypted column (cim.core.crypto.encrypted_fields) in plain SQL, in batches of primary keys:
rotation reads a batch of values not under the current key, decrypts and encrypts them in Python (the database
cannot: it has no key) and writes them back in one statement per batch, each batch its own transaction, so a
rotation can be stopped and run again.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from cim.core import crypto

BATCH = 2000
PLAINTEXT = "(plaintext)"


@dataclass(frozen=True)
class Column:
    """One encrypted column, named as SQL names it."""

    table: str
    pk: str
    column: str
    label: str

    @property
    def aad(self) -> bytes:
        return f"{self.table}.{self.column}".encode()


def columns_of(fields) -> list[Column]:
    return [
        Column(f.model._meta.db_table, f.model._meta.pk.column, f.column, f"{f.model._meta.label_lower}.{f.name}")
        for f in fields
    ]


def encrypted_columns() -> list[Column]:
    return columns_of(crypto.encrypted_fields())


def _key_id_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"split_part({column}, ':', 2)"
    return f"substr({column}, 4, instr(substr({column}, 4), ':') - 1)"


def keys_status() -> dict[str, dict[str, int]]:
    """{column label: {key id or "(plaintext)": rows}} over the non-empty values of every encrypted column."""
    q = connection.ops.quote_name
    status: dict[str, dict[str, int]] = {}
    for col in encrypted_columns():
        c = q(col.column)
        sql = (
            f"SELECT CASE WHEN substr({c}, 1, 3) = 'v1:' THEN {_key_id_sql(c)} ELSE '{PLAINTEXT}' END, count(*) "
            f"FROM {q(col.table)} WHERE {c} IS NOT NULL AND {c} <> '' GROUP BY 1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)
            status[col.label] = dict(sorted(cursor.fetchall()))
    return status


def rows_to_rotate(col: Column) -> int:
    q = connection.ops.quote_name
    head = crypto.keyring().head
    c = q(col.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {q(col.table)} WHERE {c} IS NOT NULL AND {c} <> '' AND substr({c}, 1, %s) <> %s",
            [len(head), head],
        )
        return cursor.fetchone()[0]


def _rewrite(col: Column, condition: str, params: list, transform, *, batch: int, progress) -> int:
    """Apply `transform` to the non-empty values of `col` meeting `condition`, in batches of primary keys."""
    q = connection.ops.quote_name
    table, pk, c = q(col.table), q(col.pk), q(col.column)
    select = (
        f"SELECT {pk}, {c} FROM {table} WHERE {pk} > %s AND {c} IS NOT NULL AND {c} <> '' AND {condition} "
        f"ORDER BY {pk} LIMIT %s"
    )
    # `AND value = old`: a row written since it was read keeps its newer value (written under the current key).
    update = f"UPDATE {table} SET {c} = %s WHERE {pk} = %s AND {c} = %s"
    last, written = -1, 0  # every table here has an integer primary key from 1
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(select, [last, *params, batch])
            rows = cursor.fetchall()
            if not rows:
                return written
            cursor.executemany(update, [(transform(value), key, value) for key, value in rows])
        last = rows[-1][0]
        written += len(rows)
        if progress:
            progress(len(rows))


def column_reencrypt(col: Column, *, batch: int = BATCH, progress: Callable[[int], None] = lambda n: None) -> int:
    """Encrypt every non-empty value of `col` that is not under the current key (older keys and plaintext alike)
    under the current key; returns how many rows were written."""
    ring = crypto.keyring()
    c = connection.ops.quote_name(col.column)
    return _rewrite(
        col,
        f"substr({c}, 1, %s) <> %s",
        [len(ring.head), ring.head],
        lambda value: ring.encrypt(crypto.decrypt(value, col.aad), col.aad),
        batch=batch,
        progress=progress,
    )


def column_decrypt(col: Column, *, batch: int = BATCH) -> int:
    """Write every encrypted value of `col` back in plaintext: only to undo the encryption migration."""
    c = connection.ops.quote_name(col.column)
    return _rewrite(
        col, f"substr({c}, 1, 3) = 'v1:'", [], lambda v: crypto.decrypt(v, col.aad), batch=batch, progress=None
    )


def keys_rotate(*, progress: Callable[[int], None] = lambda n: None, batch: int = BATCH, actor=None) -> dict[str, int]:
    """Re-encrypt every encrypted column under the current key: {column label: rows written}. Afterwards no value
    needs an older key, which can then be removed from the configuration."""
    from cim.audit.services import audit_record

    written = {col.label: column_reencrypt(col, batch=batch, progress=progress) for col in encrypted_columns()}
    audit_record(
        actor=actor,
        action="keys.rotate",
        target=None,
        target_type="core.encryption",
        note=f"key {crypto.keyring().current}: {sum(written.values())} values",
    )
    return written


def encrypt_existing_rows(app_label: str, model_name: str, field_names: list[str], *, batch: int = BATCH):
    """A `migrations.RunPython` that encrypts the values a model stored in plaintext before its fields became
    encrypted (and decrypts them again when the migration is reversed)."""
    from django.db import migrations

    def columns(apps):
        model = apps.get_model(app_label, model_name)
        return columns_of(model._meta.get_field(name) for name in field_names)

    def forwards(apps, schema_editor):
        for col in columns(apps):
            column_reencrypt(col, batch=batch)

    def backwards(apps, schema_editor):
        for col in columns(apps):
            column_decrypt(col, batch=batch)

    return migrations.RunPython(forwards, backwards)
