"""Cost of encryption at rest: `python bench/encryption_bench.py [--customers N]`.

Builds N demo customers in a scratch SQLite data dir, then times: one AES-GCM encryption and decryption; reading
every encrypted column of the N customers (decrypting) against reading the same columns without decrypting; a
CSV export of all customers and the time spent decrypting inside it; and `cim keys rotate` of every value to a
new key. Writes its section of bench/RESULTS.md.
"""

import argparse
import io
import os
import platform
import shutil
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402


def setup(data_dir: Path) -> None:
    os.environ["CIM_DATA_DIR"] = str(data_dir)
    for name in ("CIM_DATABASE_URL", "CIM_ENCRYPTION_KEYS"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    sys.path.insert(0, str(BENCH.parent / "src"))
    import django

    django.setup()


def read_columns(decrypting: bool) -> int:
    from django.db import connection

    from cim.core.crypto import encrypted_fields

    values = 0
    for field in encrypted_fields():
        model = field.model
        if model._meta.label_lower == "audit.fieldchange":
            continue
        if decrypting:
            values += sum(1 for _ in model.objects.order_by().values_list(field.name, flat=True).iterator(2000))
        else:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {field.column} FROM {model._meta.db_table}")
                values += len(cursor.fetchall())
    return values


def best_of(action, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cim-encryption-bench-"))
    try:
        setup(scratch)
        from django.core.management import call_command
        from django.test import override_settings

        from cim.accounts.services import user_create
        from cim.core import crypto

        call_command("migrate", verbosity=0)
        user_create(username="bench", role="administrator", password="Correct-Horse-42-bench")
        call_command("demo", customers=args.customers, json=True, stdout=io.StringIO())
        sample = crypto.encrypt("+8613812345678", b"t.c")
        n = 200_000
        encrypt_us = timeit.timeit(lambda: crypto.encrypt("+8613812345678", b"t.c"), number=n) / n * 1e6
        decrypt_us = timeit.timeit(lambda: crypto.decrypt(sample, b"t.c"), number=n) / n * 1e6
        values = read_columns(True)
        plain_read = best_of(lambda: read_columns(False))
        decrypted_read = best_of(lambda: read_columns(True))

        def export() -> None:
            call_command(
                "export",
                "customers",
                "--format",
                "csv",
                "--output",
                str(scratch / "out.csv"),
                "--user",
                "bench",
                verbosity=0,
                stdout=io.StringIO(),
            )

        export_time = best_of(export, repeat=2)
        # Time spent inside decrypt during one export: the decryption's share of the export.
        real_decrypt, spent = crypto.decrypt, [0.0, 0]

        def timed_decrypt(stored, aad):
            started = time.perf_counter()
            try:
                return real_decrypt(stored, aad)
            finally:
                spent[0] += time.perf_counter() - started
                spent[1] += 1

        crypto.decrypt = timed_decrypt
        try:
            export()
        finally:
            crypto.decrypt = real_decrypt
        old = (scratch / "encryption_keys").read_text().strip()
        with override_settings(CIM_ENCRYPTION_KEYS=f"{crypto.key_generate()},{old}"):
            started = time.perf_counter()
            call_command("keys", "rotate", "--json", verbosity=0, stdout=io.StringIO())
            rotate = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per_customer = (decrypted_read - plain_read) / args.customers * 1e6
    lines = [
        f"`bench/encryption_bench.py --customers {args.customers}`: {args.customers:,} demo customers on sqlite, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"AES-256-GCM (`cryptography`); load average {os.getloadavg()[0]:.1f} at the end (other work on the machine "
        "inflates every figure alike).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| encrypt one value | {encrypt_us:.1f} µs |",
        f"| decrypt one value | {decrypt_us:.1f} µs |",
        f"| read every encrypted column ({values:,} values), raw SQL, no decryption | {plain_read:.2f} s |",
        f"| the same through the ORM, decrypting | {decrypted_read:.2f} s ({per_customer:.0f} µs per customer) |",
        f"| CSV export of all customers | {export_time:.2f} s |",
        f"| of which decrypting ({spent[1]:,} values) | {spent[0]:.2f} s ({spent[0] / export_time:.0%}) |",
        f"| `cim keys rotate`, every value to a new key | {rotate:.2f} s ({values / rotate:,.0f} values/s) |",
    ]
    print("\n".join(lines))
    write_section("Encryption at rest: decrypt cost of lists and exports, rotation", lines, args.results)


if __name__ == "__main__":
    main()
