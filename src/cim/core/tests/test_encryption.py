"""Encryption at rest (docs/encryption.md): canary values never stored in plaintext, rotation, blind-index search
and duplicate detection, birthday conditions, the deploy check, and the migration of plaintext rows."""

import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection

from cim.audit.models import FieldChange
from cim.core import crypto
from cim.core.keys import column_reencrypt, columns_of, keys_status
from cim.customers.birthdays import birthday_between_q
from cim.customers.models import Address, Customer, Email, Phone
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update
from cim.customers.tests.factories import make_customer
from cim.quality.models import DuplicateCandidate
from cim.quality.selectors import customer_features, duplicates_of, record_features
from cim.quality.services import duplicates_scan
from cim.search.selectors import search_filter
from cim.segments.rules import rules_condition, rules_validate

PHONE, EMAIL, STREET, ID_NUMBER = "+8613987654321", "canary.qiu@example.org", "金丝雀路77号", "11010519491231002X"
BIRTHDAY = date(1949, 12, 31)
SRC = Path(__file__).resolve().parents[3]


def _canary(actor, **fields):
    return make_customer(
        actor,
        display_name="邱金丝",
        birthday=BIRTHDAY,
        id_number=ID_NUMBER.lower(),
        phones=[{"number": PHONE}],
        emails=[{"address": EMAIL}],
        addresses=[{"province": "北京市", "city": "北京市", "district": "东城区", "street": STREET}],
        **fields,
    )


def _column_values(model, name):
    field = model._meta.get_field(name)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {field.column} FROM {model._meta.db_table}")
        return [row[0] for row in cursor.fetchall()]


def _new_key_first(settings) -> str:
    settings.CIM_ENCRYPTION_KEYS = f"{crypto.key_generate()},{settings.CIM_ENCRYPTION_KEYS}"
    return crypto.keyring().current


def test_sensitive_columns_hold_ciphertext_and_read_back_plain(admin_user):
    customer = _canary(admin_user)
    stored = {
        (model, name): _column_values(model, name)
        for model, name in (
            (Phone, "number"),
            (Phone, "raw"),
            (Email, "address"),
            (Address, "street"),
            (Customer, "birthday"),
            (Customer, "id_number"),
        )
    }
    for values in stored.values():
        assert values and all(v.startswith(f"v1:{crypto.keyring().current}:") for v in values)
        assert not any(canary in v for v in values for canary in (PHONE, "13987654321", EMAIL, STREET, "1949"))
    customer.refresh_from_db()
    assert customer.birthday == BIRTHDAY and customer.id_number == ID_NUMBER
    assert (customer.birth_year, customer.birth_month) == (1949, 12)
    assert customer.phones.get().number == PHONE and customer.emails.get().address == EMAIL
    assert customer.addresses.get().street == STREET
    # Two encryptions of one value differ (random nonce), and a value moved to another column does not decrypt.
    assert crypto.encrypt(PHONE, b"a.b") != crypto.encrypt(PHONE, b"a.b")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(crypto.encrypt(PHONE, b"customers_phone.number"), b"customers_phone.raw")


def test_change_history_of_sensitive_fields_is_encrypted(admin_user):
    customer = _canary(admin_user)
    customer_update(
        customer=customer,
        data=CustomerInput(birthday=date(1950, 1, 2), phones=[{"number": "13700001111"}]),
        actor=admin_user,
    )
    changes = FieldChange.objects.filter(event__target_id=str(customer.pk))
    assert {c.field for c in changes} >= {"birthday", "phones"}
    assert any(PHONE in c.old_value for c in changes)  # readable through the model
    raw = _column_values(FieldChange, "old_value") + _column_values(FieldChange, "new_value")
    assert all(v == "" or v.startswith("v1:") for v in raw)
    assert not any(canary in v for v in raw for canary in (PHONE, "13700001111", "1949-12-31", "1950-01-02"))


def test_filtering_an_encrypted_column_by_value_fails_loudly(admin_user):
    _canary(admin_user)
    with pytest.raises(TypeError, match="encrypted"):
        list(Phone.objects.filter(number=PHONE))
    with pytest.raises(Exception, match="Unsupported lookup"):
        list(Customer.objects.filter(birthday__month=12))
    assert Address.objects.filter(street="").count() == 0  # emptiness stays a query


def test_search_by_phone_last_four_email_and_id_number_still_finds_the_customer(admin_user):
    customer = _canary(admin_user)
    make_customer(admin_user, display_name="路人", phones=[{"number": "13900001234"}])
    for query in (PHONE, "139 8765 4321", "4321", EMAIL, "canary.qiu", ID_NUMBER, ID_NUMBER.lower()):
        assert list(search_filter(Customer.objects.all(), query).values_list("pk", flat=True)) == [customer.pk], query
    assert not search_filter(Customer.objects.all(), "110105194912310011").exists()  # a different, valid-looking ID


def test_duplicates_are_paired_by_phone_email_and_id_number(admin_user):
    first = _canary(admin_user)
    second = make_customer(admin_user, display_name="邱金丝", phones=[{"number": PHONE}])
    assert DuplicateCandidate.objects.filter(customer=second, other=first).exists()
    third = make_customer(admin_user, display_name="邱金丝", emails=[{"address": EMAIL.upper()}])
    found = duplicates_of(record=customer_features([third.pk])[0], exclude_id=third.pk)
    assert first in [d.customer for d in found]
    fourth = make_customer(admin_user, display_name="完全不同", id_number=ID_NUMBER)
    found = {d.customer: d.probability for d in duplicates_of(record=_record(fourth), exclude_id=fourth.pk)}
    assert found[first] == 1.0
    duplicates_scan(actor=admin_user)
    pairs = set(DuplicateCandidate.objects.values_list("customer_id", "other_id"))
    assert (fourth.pk, first.pk) in pairs


def _record(customer):
    values = {"display_name": customer.display_name, "id_number": customer.id_number, "birthday": customer.birthday}
    contacts = {
        "phones": [{"match_key": p.match_key} for p in customer.phones.all()],
        "emails": [{"match_key": e.match_key} for e in customer.emails.all()],
    }
    return record_features(values=values, contacts=contacts)


def test_an_invalid_id_number_is_a_field_error(admin_user, api_client):
    response = api_client(admin_user).post(
        "/api/v1/customers",
        {"display_name": "张三", "id_number": "110105194912310021"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "id_number" in json.dumps(response.json())


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("on", "1949-12-31", {"a"}),
        ("before", "1949-12-31", {"b"}),
        ("after", "1949-12-30", {"a", "c"}),
        ("between", ["1949-12-02", "1950-01-01"], {"a"}),
        ("between", ["1949-12-01", "1950-01-15"], {"a", "b", "c"}),
    ],
)
def test_birthday_conditions_work_on_the_encrypted_date(admin_user, operator, value, expected):
    names = {
        make_customer(admin_user, display_name=name, birthday=day).pk: name
        for name, day in (("a", BIRTHDAY), ("b", date(1949, 12, 1)), ("c", date(1950, 1, 15)), ("d", None))
    }
    tree = rules_validate({"match": "all", "rules": [{"field": "birthday", "operator": operator, "value": value}]})
    assert {names[pk] for pk in Customer.objects.filter(rules_condition(tree)).values_list("pk", flat=True)} == expected
    month = rules_validate({"match": "all", "rules": [{"field": "birthday_month", "operator": "eq", "value": 12}]})
    assert {names[c.pk] for c in Customer.objects.filter(rules_condition(month))} == {"a", "b"}
    assert not Customer.objects.filter(birthday_between_q(date(1950, 2, 1), date(1949, 1, 1))).exists()


def test_phone_and_email_segment_conditions_match_whole_values(admin_user):
    customer = _canary(admin_user)
    make_customer(admin_user, display_name="路人", phones=[{"number": "13900001234"}])
    for field, value in (("phone", "139 8765 4321"), ("email", EMAIL.upper())):
        tree = rules_validate({"match": "all", "rules": [{"field": field, "operator": "eq", "value": value}]})
        assert list(Customer.objects.filter(rules_condition(tree))) == [customer]
    with pytest.raises(Exception, match="contains"):
        rules_validate({"match": "all", "rules": [{"field": "phone", "operator": "contains", "value": "4321"}]})


def test_rotation_leaves_no_row_under_the_old_key_and_every_value_decrypts(admin_user, settings):
    customer = _canary(admin_user)
    customer_update(customer=customer, data=CustomerInput(notes="改了"), actor=admin_user)
    old_kid = crypto.keyring().current
    new_kid = _new_key_first(settings)
    assert old_kid in {kid for counts in keys_status().values() for kid in counts}
    out = io.StringIO()
    call_command("keys", "rotate", "--json", "--batch", "2", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1])["rewritten"] > 6
    status = keys_status()
    assert {kid for counts in status.values() for kid in counts} == {new_kid}
    # The old key can go now.
    settings.CIM_ENCRYPTION_KEYS = settings.CIM_ENCRYPTION_KEYS.split(",")[0]
    customer = Customer.objects.get(pk=customer.pk)
    assert (customer.birthday, customer.id_number) == (BIRTHDAY, ID_NUMBER)
    assert customer.phones.get().number == PHONE and customer.addresses.get().street == STREET
    assert all(c.old_value is not None for c in FieldChange.objects.all())
    out = io.StringIO()
    call_command("keys", "status", "--json", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1])["stale"] == 0


def test_rows_under_a_removed_key_make_status_fail_and_reads_raise(admin_user, settings):
    _canary(admin_user)
    settings.CIM_ENCRYPTION_KEYS = crypto.key_generate()
    with pytest.raises(Exception, match="not configured"):
        call_command("keys", "status", stdout=io.StringIO())
    with pytest.raises(crypto.DecryptionError):
        Phone.objects.get()


def test_keys_generate_prints_a_usable_key_line():
    out = io.StringIO()
    call_command("keys", "generate", stdout=out)
    line = out.getvalue().strip()
    ((kid, key),) = crypto.keys_parse(line).items()
    assert line.startswith(kid + ":") and len(key) == 32


def test_plaintext_rows_from_before_encryption_are_read_and_then_encrypted(admin_user):
    customer = _canary(admin_user)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_phone SET number = %s, raw = %s", [PHONE, "139 8765 4321"])
    assert customer.phones.get().number == PHONE  # readable in the meantime
    assert keys_status()["customers.phone.number"] == {"(plaintext)": 1}
    fields = [Phone._meta.get_field("number"), Phone._meta.get_field("raw")]
    assert sum(column_reencrypt(col, batch=1) for col in columns_of(fields)) == 2
    assert set(keys_status()["customers.phone.number"]) == {crypto.keyring().current}
    assert customer.phones.get().raw == "139 8765 4321"


def _ids(errors):
    return {e.id for e in errors}


def test_the_deploy_check_wants_keys_and_a_private_key_file(db, settings, tmp_path):
    assert not _ids(run_checks(include_deployment_checks=True, tags=["cim"])) & {"cim.E101", "cim.E102"}
    settings.CIM_ENCRYPTION_KEYS = "k1:not-base64!"
    assert "cim.E101" in _ids(run_checks(include_deployment_checks=True, tags=["cim"]))
    settings.CIM_ENCRYPTION_KEYS = ""
    assert "cim.E101" in _ids(run_checks(include_deployment_checks=True, tags=["cim"]))
    key_file = tmp_path / "encryption_keys"
    key_file.write_text(crypto.key_generate())
    key_file.chmod(0o644)
    settings.CIM_ENCRYPTION_KEYS, settings.CIM_ENCRYPTION_KEY_FILE = key_file.read_text(), key_file
    assert "cim.E102" in _ids(run_checks(include_deployment_checks=True, tags=["cim"]))
    key_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert "cim.E102" not in _ids(run_checks(include_deployment_checks=True, tags=["cim"]))


CANARY_SCRIPT = textwrap.dedent(
    """
    import django, logging, sys
    from datetime import date
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from cim.accounts.services import user_create
    from cim.customers.schemas import CustomerInput
    from cim.customers.services import customer_create, customer_update
    from cim.ingest.services import import_job_create, import_run

    logging.getLogger("django.db.backends").setLevel(logging.DEBUG)
    call_command("migrate", verbosity=0)
    admin, _ = user_create(username="root", role="administrator", password="Correct-Horse-42")
    customer = customer_create(data=CustomerInput(
        display_name="邱金丝", birthday=date(1949, 12, 31), id_number="{id_number}",
        phones=[{{"number": "{phone}"}}], emails=[{{"address": "{email}"}}],
        addresses=[{{"province": "北京市", "street": "{street}"}}]), actor=admin)
    customer_update(customer=customer, data=CustomerInput(
        birthday=date(1951, 11, 29), phones=[{{"number": "13611112222"}}], emails=[{{"address": "x.{email}"}}],
        addresses=[{{"province": "北京市", "street": "新{street}"}}], id_number="{id_number2}"), actor=admin)
    from pathlib import Path
    path = Path(sys.argv[1])
    job = import_job_create(path=path, filename="canary.csv", actor=admin)
    counts = import_run(job=job, actor=admin)
    assert counts.created == 1, counts
    print("ok", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_canaries_never_appear_in_the_database_files_or_the_logs(tmp_path):
    """A real data directory and SQLite file (WAL): create, update and import canary values, then read the bytes of
    the database and its WAL, and the SQL and application logs (DEBUG, every statement with its parameters)."""
    csv_path = tmp_path / "canary.csv"
    csv_path.write_text(
        "姓名,手机,邮箱,地址,生日,身份证号\n导入金丝,13522223333,import.canary@example.net,北京市东城区导入路9号,1960-02-29,"
        "110101196002290019\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "DJANGO_SETTINGS_MODULE": "cim.config.settings",
        "CIM_DATA_DIR": str(tmp_path / "data"),
        "CIM_DEBUG": "1",
        "CIM_LOG_LEVEL": "DEBUG",
    }
    env.pop("CIM_DATABASE_URL", None)
    env.pop("CIM_ENCRYPTION_KEYS", None)
    script = CANARY_SCRIPT.format(
        phone=PHONE, email=EMAIL, street=STREET, id_number=ID_NUMBER, id_number2="11010119511129003X"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(csv_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "INSERT" in done.stderr  # the SQL log was on
    data = tmp_path / "data"
    assert stat.S_IMODE((data / "encryption_keys").stat().st_mode) == 0o600
    files = [data / "cim.sqlite3", data / "cim.sqlite3-wal"]
    before_checkpoint = b"".join(f.read_bytes() for f in files if f.exists())
    with sqlite3.connect(data / "cim.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        history = db.execute("SELECT old_value || new_value FROM audit_fieldchange").fetchall()
    after_checkpoint = (data / "cim.sqlite3").read_bytes()
    logs = (done.stdout + done.stderr).encode()
    canaries = [
        PHONE,
        "13987654321",
        "13611112222",
        "13522223333",
        EMAIL,
        "import.canary@example.net",
        STREET,
        "导入路9号",
        ID_NUMBER,
        "110101196002290019",
        "1949-12-31",
        "1951-11-29",
        "1960-02-29",
        "11010119511129003X",
    ]
    assert history and all(row[0].startswith("v1:") or row[0] == "" for row in history)
    assert "邱金丝".encode() in after_checkpoint  # names are not encrypted: the right file was read
    for canary in canaries:
        for name, blob in (("database", before_checkpoint), ("checkpointed", after_checkpoint), ("logs", logs)):
            assert canary.encode() not in blob, f"{canary} in {name}"
        assert canary.encode("utf-16-le") not in after_checkpoint


def test_a_merge_keeps_derived_columns_in_step_and_its_snapshots_encrypted(admin_user):
    from cim.quality.merge import customer_merge, customer_unmerge
    from cim.quality.models import MergeRecord

    survivor = make_customer(admin_user, display_name="邱金丝")
    duplicate = _canary(admin_user)
    record = customer_merge(survivor=survivor, duplicates=[duplicate], actor=admin_user)
    survivor.refresh_from_db()
    assert (survivor.birthday, survivor.birth_year, survivor.birth_month) == (BIRTHDAY, 1949, 12)
    assert search_filter(Customer.objects.exclude(status="archived"), ID_NUMBER).get() == survivor
    stored = [v for name in ("customers_before", "moved") for v in _column_values(MergeRecord, name)]
    assert all(v.startswith("v1:") for v in stored)
    assert not any(canary in v for v in stored for canary in (PHONE, EMAIL, STREET, ID_NUMBER, "1949-12-31"))
    assert PHONE in json.dumps(MergeRecord.objects.get().moved)
    customer_unmerge(record=record, actor=admin_user)
    duplicate.refresh_from_db()
    assert duplicate.phones.get().number == PHONE and duplicate.birthday == BIRTHDAY


def test_erasure_blanks_the_encrypted_values_and_the_keys_made_from_them(admin_user, settings, tmp_path):
    from cim.privacy.erasure import customer_erase

    settings.CIM_TOMBSTONE_FILE = tmp_path / "tombstones.jsonl"  # never the journal in var/

    customer = _canary(admin_user)
    customer_erase(customer=customer, actor=admin_user, reason="请求删除")
    customer.refresh_from_db()
    assert (customer.id_number, customer.id_number_key, customer.birthday, customer.birth_year) == ("", "", None, None)
    assert not search_filter(Customer.objects.all(), ID_NUMBER).exists()
    assert not search_filter(Customer.objects.all(), PHONE).exists()
