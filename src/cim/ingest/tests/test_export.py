"""Customer export: the three formats read back, neutralisation, scope, audit, the CLI, the page and the API."""

import csv
import io
import json

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from cim.accounts.roles import Perm, Role, has_perm
from cim.audit.models import AuditEvent
from cim.customers.configuration import custom_field_create
from cim.customers.filters import CustomerFilter
from cim.customers.services import PermissionDenied
from cim.customers.tests.factories import make_customer
from cim.ingest import export as export_module
from cim.ingest.export import customers_export, customers_export_stream

pytestmark = pytest.mark.django_db
EXPORTERS = {Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST}


@pytest.fixture
def admin(users):
    return users[Role.ADMINISTRATOR]


@pytest.fixture
def fields(admin):
    """One custom field of every type."""
    custom_field_create(key="motto", label_zh="座右铭", label_en="Motto", field_type="text", actor=admin)
    custom_field_create(key="budget", label_zh="预算", label_en="Budget", field_type="number", actor=admin)
    custom_field_create(key="since", label_zh="入会日期", label_en="Member since", field_type="date", actor=admin)
    custom_field_create(
        key="level", label_zh="等级", label_en="Level", field_type="choice", choices=["金", "银"], actor=admin
    )
    custom_field_create(
        key="likes", label_zh="爱好", label_en="Likes", field_type="multi_choice", choices=["茶", "☕"], actor=admin
    )


@pytest.fixture
def customer(admin, fields):
    return make_customer(
        admin,
        display_name="张三😀",
        family_name="张",
        given_name="三",
        alias="老张",
        english_name="San Zhang",
        gender="male",
        birthday="1990-02-03",
        company="华为技术有限公司",
        job_title="经理",
        value_tier="vip",
        region="south",
        lifecycle_stage="loyal",
        notes="第一行\n第二行 🎉",
        tags=["VIP", "重点|客户"],
        phones=[{"number": "13912345678"}, {"number": "13812345678", "is_primary": True}],
        emails=[{"address": "zhang.san@example.com", "is_primary": True}, {"address": "z|s@example.cn"}],
        addresses=[
            {"province": "广东省", "city": "深圳市", "district": "龙岗区", "street": "坂田街道", "is_primary": True}
        ],
        custom_fields={
            "motto": "天道酬勤",
            "budget": 12.5,
            "since": "2020-01-02",
            "level": "金",
            "likes": ["茶", "☕"],
        },
    )


def run_export(user, fmt="csv", filters=None, **options) -> bytes:
    out = io.BytesIO()
    customers_export(user=user, filters=filters or CustomerFilter(), fmt=fmt, out=out, **options)
    return out.getvalue()


def read_csv(data: bytes) -> list[dict]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV starts with the UTF-8 BOM"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> list[dict]:
    rows = []
    for sheet in openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets:
        header, *body = sheet.iter_rows(values_only=True)
        rows += [dict(zip(header, (cell or "" for cell in row), strict=True)) for row in body]
    return rows


def read_jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


READERS = {"csv": read_csv, "xlsx": read_xlsx, "jsonl": read_jsonl}


def unescape(cell: str) -> str:
    """What the importer does: drop the `'` the export put before a formula-like cell."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in export_module.FORMULA_STARTS else cell


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


# --- formats ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "read"), [("csv", read_csv), ("xlsx", read_xlsx)])
def test_spreadsheets_read_back_every_field(admin, customer, fmt, read):
    customer.refresh_from_db()
    (row,) = read(run_export(admin, fmt))
    assert list(row) == [column.name for column in export_module.export_columns()]
    values = {name: unescape(value) for name, value in row.items()}
    assert values == {
        "number": customer.number,
        "display_name": "张三😀",
        "family_name": "张",
        "given_name": "三",
        "alias": "老张",
        "english_name": "San Zhang",
        "kind": "person",
        "gender": "male",
        "birthday": "1990-02-03",
        "id_number": "",
        "company": "华为技术有限公司",
        "job_title": "经理",
        "uscc": "",
        "industry": "",
        "company_size": "",
        "customer_type": "",
        "source_channel": "",
        "value_tier": "vip",
        "region": "south",
        "lifecycle_stage": "loyal",
        "status": "active",
        "owner": admin.username,
        "team": "华东销售部",
        "tags": "VIP\n重点|客户",
        "phones": "+8613812345678\n+8613912345678",
        "emails": "zhang.san@example.com\nz|s@example.cn",
        "country": "CN",
        "province": "广东省",
        "city": "深圳市",
        "district": "龙岗区",
        "address": "坂田街道",
        "postal_code": "",
        "notes": "第一行\n第二行 🎉",
        "created_at": timezone.localtime(customer.created_at).isoformat(),
        "updated_at": timezone.localtime(customer.updated_at).isoformat(),
        "cf.motto": "天道酬勤",
        "cf.budget": "12.5",
        "cf.since": "2020-01-02",
        "cf.level": "金",
        "cf.likes": "茶\n☕",
    }


def test_json_lines_keep_types_and_are_not_neutralised(admin, customer):
    (row,) = read_jsonl(run_export(admin, "jsonl"))
    assert row["display_name"] == "张三😀"
    assert row["phones"] == ["+8613812345678", "+8613912345678"]
    assert row["tags"] == ["VIP", "重点|客户"]
    assert row["cf.budget"] == 12.5
    assert row["cf.likes"] == ["茶", "☕"]
    assert row["uscc"] == "" and row["birthday"] == "1990-02-03"


def test_missing_values_are_empty_cells_and_json_null(admin):
    make_customer(admin, display_name="李四", owner_id=None)
    (row,) = read_jsonl(run_export(admin, "jsonl"))
    assert row["birthday"] is None and row["city"] is None and row["phones"] == []
    (cells,) = read_csv(run_export(admin, "csv"))
    assert cells["birthday"] == cells["city"] == cells["phones"] == ""


def test_formula_cells_are_neutralised_in_spreadsheets_only(admin):
    make_customer(
        admin,
        display_name='=HYPERLINK("http://evil")',
        alias="@SUM(A1)",
        company="-2+3",
        job_title="'quoted",
        notes="+cmd",
        phones=[{"number": "13812345678"}],
    )
    expected = {
        "display_name": '\'=HYPERLINK("http://evil")',
        "alias": "'@SUM(A1)",
        "company": "'-2+3",
        "job_title": "'quoted",  # not a formula: left as it is
        "notes": "'+cmd",
        "phones": "'+8613812345678",
    }
    for read, fmt in ((read_csv, "csv"), (read_xlsx, "xlsx")):
        (row,) = read(run_export(admin, fmt, fields=list(expected)))
        assert row == expected, fmt
    (row,) = read_jsonl(run_export(admin, "jsonl", fields=list(expected)))
    assert row == {name: unescape(value) for name, value in expected.items()} | {"phones": ["+8613812345678"]}


def test_xlsx_cells_are_text_never_formulas(admin):
    make_customer(admin, display_name="=1+1")
    sheet = openpyxl.load_workbook(io.BytesIO(run_export(admin, "xlsx", fields=["display_name"]))).active
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == "'=1+1"


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(admin, monkeypatch):
    monkeypatch.setattr(export_module, "XLSX_SHEET_ROWS", 3)
    for i in range(5):
        make_customer(admin, display_name=f"客户{i}")
    workbook = openpyxl.load_workbook(io.BytesIO(run_export(admin, "xlsx", fields=["display_name"])))
    assert workbook.sheetnames == ["customers", "customers 2", "customers 3"]
    assert len(read_xlsx(run_export(admin, "xlsx"))) == 5


def test_fields_choose_and_order_the_columns(admin, customer):
    (row,) = read_csv(run_export(admin, "csv", fields=["phones", "number", "city", "address"]))
    assert list(row) == ["phones", "number", "city", "address"]
    (row,) = read_jsonl(run_export(admin, "jsonl", fields=["cf"]))
    assert list(row) == ["cf.budget", "cf.level", "cf.likes", "cf.motto", "cf.since"]  # by position, then key


def test_unknown_field_format_or_headers_is_a_clear_error(admin):
    for kwargs, field in (
        ({"fields": ["number", "salary"]}, "fields"),
        ({"fmt": "xls"}, "format"),
        ({"headers": "pretty"}, "headers"),
    ):
        with pytest.raises(ValidationError) as error:
            customers_export_stream(user=admin, filters=CustomerFilter(), **kwargs)
        assert field in error.value.message_dict


@pytest.mark.parametrize(
    ("language", "name", "phones", "motto"), [("zh-hans", "名称", "电话", "座右铭"), ("en", "Name", "Phones", "Motto")]
)
def test_label_headers_in_the_users_language(admin, customer, language, name, phones, motto):
    with translation.override(language):
        data = run_export(admin, "csv", fields=["display_name", "phones", "cf.motto"], headers="labels")
    (row,) = read_csv(data)
    assert list(row) == [name, phones, motto]


# --- scope, rights and audit --------------------------------------------------------------------------------


def test_export_honours_record_scope(users, admin, other_team, make_user):
    manager = users[Role.MANAGER]
    outsider = make_user(Role.SALES, username="outsider", team=other_team)
    make_customer(admin, display_name="本团队客户", owner_id=users[Role.SALES].pk, team_id=manager.team_id)
    make_customer(admin, display_name="别的团队客户", owner_id=outsider.pk, team_id=other_team.pk)
    names = [row["display_name"] for row in read_jsonl(run_export(manager, "jsonl"))]
    assert names == ["本团队客户"]
    assert len(read_jsonl(run_export(admin, "jsonl"))) == 2


def test_filters_apply(admin):
    make_customer(admin, display_name="金牌客户", value_tier="vip", tags=["重点"])
    make_customer(admin, display_name="普通客户", value_tier="low")
    rows = read_jsonl(run_export(admin, "jsonl", filters=CustomerFilter(value_tier="vip", tag=["重点"])))
    assert [row["display_name"] for row in rows] == ["金牌客户"]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_only_roles_with_the_export_right_may_export(users, role):
    assert has_perm(users[role], Perm.CUSTOMER_EXPORT) == (role in EXPORTERS)
    if role not in EXPORTERS:
        with pytest.raises(PermissionDenied):
            run_export(users[role])


def test_audit_names_format_fields_and_rows_never_values(admin, customer):
    run_export(admin, "xlsx", fields=["display_name", "phones"], filters=CustomerFilter(q="张三", value_tier="vip"))
    event = AuditEvent.objects.get(action="customer.export")
    assert event.actor == admin and event.target_type == "customers.customer"
    assert event.fields == ["display_name", "phones"]
    assert event.note == "format=xlsx rows=1 headers=names filters: q value_tier=vip"
    assert "张三" not in event.note


def test_an_interrupted_stream_is_audited_as_incomplete(admin, customer):
    chunks = customers_export_stream(user=admin, filters=CustomerFilter(), fmt="csv").chunks()
    next(chunks)
    chunks.close()
    assert AuditEvent.objects.get(action="customer.export").note == "format=csv rows=1 headers=names incomplete"


def test_rows_are_read_in_chunks_each_with_its_own_contacts(admin, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(export_module, "CHUNK_ROWS", 3)
    for i in range(7):
        make_customer(admin, display_name=f"客户{i}", tags=[f"标签{i}"], phones=[{"number": f"1381234{i:04d}"}])
    # One query read in chunks of 3; per chunk its tags and phones; the custom fields and the audit event once
    # (the event: lock and read the chain head, insert, advance the head).
    with django_assert_num_queries(1 + 3 * 2 + 1 + 3):
        rows = read_jsonl(run_export(admin, "jsonl", fields=["display_name", "tags", "phones"]))
    assert [row["display_name"] for row in rows] == [f"客户{i}" for i in reversed(range(7))]
    assert all(row["tags"] == [f"标签{row['display_name'][2:]}"] for row in rows)
    assert all(row["phones"] == [f"+861381234{int(row['display_name'][2:]):04d}"] for row in rows)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_query_count_does_not_grow_with_rows(admin, fields, django_assert_max_num_queries, fmt):
    def add(count):
        for i in range(count):
            make_customer(admin, display_name=f"客户{i}", tags=["VIP"], phones=[{"number": f"1381234{i:04d}"}])

    add(2)
    with django_assert_max_num_queries(10) as few:  # 2 of them lock and advance the audit chain head
        run_export(admin, fmt)
    add(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        data = run_export(admin, fmt)
    assert len(READERS[fmt](data)) == 22


# --- CLI ----------------------------------------------------------------------------------------------------


def test_cli_writes_a_file_and_reports_json(admin, customer, tmp_path):
    target = tmp_path / "out.xlsx"
    out = io.StringIO()
    options = ["--format", "xlsx", "--value-tier", "vip", "--tag", "VIP", "--fields", "number,display_name"]
    call_command(
        "export", "customers", "--user", admin.username, *options, "--output", str(target), "--json", stdout=out
    )
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == {"rows": 1, "format": "xlsx", "output": str(target)}
    assert read_xlsx(target.read_bytes()) == [{"number": customer.number, "display_name": "张三😀"}]
    assert not (tmp_path / "out.xlsx.part").exists()


def test_cli_streams_csv_to_stdout_and_reports_on_stderr(admin, customer, capsysbinary):
    call_command("export", "customers", "--user", admin.username, "--owner", admin.username, "--json")
    captured = capsysbinary.readouterr()
    assert [row["number"] for row in read_csv(captured.out)] == [customer.number]
    assert json.loads(captured.err.decode().strip().splitlines()[-1])["rows"] == 1


def test_cli_xlsx_needs_an_output_file(users):
    with pytest.raises(CommandError, match="needs --output"):
        call_command("export", "customers", "--user", "analyst-user", "--format", "xlsx")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No active user"),
        (["--user", "sales-user"], "does not allow"),
        (["--user", "analyst-user", "--value-tier", "gold"], "--value-tier"),
        (["--user", "analyst-user", "--team", "没有的团队"], "No team"),
        (["--user", "analyst-user", "--fields", "salary"], "salary"),
    ],
)
def test_cli_errors_leave_no_file(users, args, message, tmp_path):
    with pytest.raises(CommandError, match=message):
        call_command("export", "customers", *args, "--output", str(tmp_path / "x.csv"), stdout=io.StringIO())
    assert not list(tmp_path.iterdir())


# --- page and API -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_page_downloads_for_exporters_and_403_for_others(users, admin, role):
    make_customer(admin, display_name="王五", value_tier="vip", owner_id=users[role].pk)
    make_customer(admin, display_name="赵六", value_tier="low", owner_id=users[role].pk)
    response = client_for(users[role]).get(reverse("ingest:customers_export"), {"format": "csv", "value_tier": "vip"})
    if role not in EXPORTERS:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="customers-') and disposition.endswith('.csv"')
    assert [row["display_name"] for row in read_csv(b"".join(response.streaming_content))] == ["王五"]


def test_list_page_offers_export_only_with_the_right(users):
    export_url = reverse("ingest:customers_export")
    assert export_url in client_for(users[Role.ANALYST]).get(reverse("customers:list")).content.decode()
    assert export_url not in client_for(users[Role.SALES]).get(reverse("customers:list")).content.decode()


def test_page_with_a_bad_format_goes_back_to_the_list_with_the_error(admin):
    response = client_for(admin).get(reverse("ingest:customers_export"), {"format": "pdf", "value_tier": "vip"})
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:list") + "?value_tier=vip"


def test_api_streams_the_file(api_client, admin, customer):
    response = api_client(admin).get("/api/v1/customers/export", {"format": "jsonl", "fields": "number,tags"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    assert read_jsonl(b"".join(response.streaming_content)) == [
        {"number": customer.number, "tags": ["VIP", "重点|客户"]}
    ]


@pytest.mark.parametrize(
    ("role", "query", "status", "code"),
    [
        (Role.SALES, {}, 403, "permission_denied"),
        (Role.ANALYST, {"fields": "salary"}, 422, "validation_error"),
        (Role.ANALYST, {"format": "pdf"}, 422, "validation_error"),
    ],
)
def test_api_errors_are_json(api_client, users, role, query, status, code):
    response = api_client(users[role]).get("/api/v1/customers/export", query)
    assert response.status_code == status
    assert response.json()["code"] == code
