"""The logical export/import: SQLite → PostgreSQL through `cim backup export-jsonl` / `import-jsonl`, compared
table by table (rows and checksums), with the sequences reset; and the refusals."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from cim.activities.history_schemas import OrderInput, ProductInput
from cim.activities.orders import order_create, product_save
from cim.backups.jsonl import MANIFEST, JsonlError, exported_models, import_jsonl
from cim.customers import configuration
from cim.customers.tests.factories import make_customer

SRC = Path(__file__).resolve().parents[3]
TALLY = """
import json
import django
django.setup()
from cim.backups.jsonl import exported_models, table_tally
from cim.accounts.models import Team
out = {}
for model in exported_models():
    tally = table_tally(model)
    out[model._meta.label_lower] = [tally.rows, tally.checksum]
out["new_team_pk"] = Team.objects.create(name="after import").pk
print(json.dumps(out))
"""


def _postgres_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 1).close()
    except OSError:
        return False
    return True


def _data(admin_user) -> None:
    tag = configuration.tag_create(name="VIP", actor=admin_user)
    product_save(data=ProductInput(sku="TEA-1", name="龙井", price="12.50"), actor=admin_user)
    for index in range(3):
        customer = make_customer(admin_user, display_name=f"迁移客户{index}")
        customer.tags.add(tag)
        customer.emails.create(address=f"c{index}@example.com", is_primary=True)
        order_create(customer=customer, data=OrderInput(lines=[{"sku": "TEA-1", "quantity": 2}]), actor=admin_user)


def _cim(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cim.cli import main; main(sys.argv[1:])", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.mark.skipif(not _postgres_up(), reason="no PostgreSQL on 127.0.0.1:5432")
@pytest.mark.django_db
def test_sqlite_to_postgresql(admin_user, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the move starts from SQLite")
    _data(admin_user)
    folder = tmp_path / "export"
    call_command("backup", "export-jsonl", str(folder))
    manifest = json.loads((folder / MANIFEST).read_text())
    assert [t["model"] for t in manifest["tables"]] == [m._meta.label_lower for m in exported_models()]
    order = [t["model"] for t in manifest["tables"]]
    assert order.index("customers.customer") < order.index("activities.order") < order.index("activities.orderline")

    name = f"cim_backups_jsonl_{os.getpid()}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **os.environ,
            "PYTHONPATH": str(SRC),
            "DJANGO_SETTINGS_MODULE": "cim.config.settings",
            "CIM_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
            "CIM_DATA_DIR": str(tmp_path / "pg-data"),
            "CIM_SEARCH_KEY": settings.CIM_SEARCH_KEY,  # as the guide says: the new installation keeps the key
        }
        migrated = _cim(env, "migrate", "--no-input", "-v0")
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        refused = _cim(env, "backup", "import-jsonl", str(folder))  # no terminal, no --yes
        assert refused.returncode == 1 and "--yes" in refused.stderr
        imported = _cim(env, "backup", "import-jsonl", str(folder), "--yes")
        assert imported.returncode == 0, imported.stderr[-3000:]
        tallied = subprocess.run(
            [sys.executable, "-c", TALLY], env=env, capture_output=True, text=True, check=True, timeout=300
        )
        found = json.loads(tallied.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    for table in manifest["tables"]:
        assert found[table["model"]] == [table["rows"], table["checksum"]], table["model"]
    rows = {t["model"]: t["rows"] for t in manifest["tables"]}
    assert rows["customers.customer"] == 3 and rows["activities.orderline"] == 3
    teams = next(t for t in manifest["tables"] if t["model"] == "accounts.team")
    assert found["new_team_pk"] > teams["rows"]  # the sequence continues after the imported ids


@pytest.mark.django_db
def test_import_refuses_another_schema_and_changes_nothing(admin_user, tmp_path):
    _data(admin_user)
    folder = tmp_path / "export"
    call_command("backup", "export-jsonl", str(folder))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["migrations"]["customers"] = "9999_future"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(JsonlError, match="schema"):
        import_jsonl(folder)
    with pytest.raises(CommandError, match="nothing changed"):
        call_command("backup", "import-jsonl", str(folder), "--yes")
    manifest["migrations"] = json.loads((folder / MANIFEST).read_text())["migrations"]
    call_command("backup", "export-jsonl", str(tmp_path / "again"))
    manifest = json.loads((tmp_path / "again" / MANIFEST).read_text())
    manifest["search_key_id"] = "0" * 16
    (tmp_path / "again" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(JsonlError, match="search key"):
        import_jsonl(tmp_path / "again")
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", "export-jsonl", str(folder))


@pytest.mark.django_db
def test_round_trip_on_the_same_engine(admin_user, tmp_path):
    """Export, change the data, import: the data is the export's again (checked by the import's own read-back)."""
    from cim.customers.models import Customer

    _data(admin_user)
    folder = tmp_path / "export"
    call_command("backup", "export-jsonl", str(folder))
    make_customer(admin_user, display_name="导出后的客户")
    call_command("backup", "import-jsonl", str(folder), "--yes")
    assert sorted(Customer.objects.values_list("display_name", flat=True)) == [f"迁移客户{i}" for i in range(3)]
