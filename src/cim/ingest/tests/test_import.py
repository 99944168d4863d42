"""Importing customers: formats and encodings, mapping, validation per row, dry run, re-import, duplicates, resume."""

import csv
import io
import json
import zipfile
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils.translation import override
from django_tasks_db.models import DBTaskResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cim.audit.models import AuditEvent
from cim.customers.models import Customer, ExternalId
from cim.customers.services import PLAIN_FIELDS
from cim.customers.tests.factories import make_customer
from cim.ingest import importer, services
from cim.ingest.mapping import TARGETS
from cim.ingest.models import ImportJob, ImportRowError
from cim.ingest.readers import FileProblem, RowProblem, open_table
from cim.ingest.services import import_job_create, import_run
from cim.quality.models import DuplicateCandidate

HEADER = ["编号", "姓名", "手机号码", "邮箱", "性别", "生日", "公司", "标签", "备注", "客户等级"]
ROWS = [
    [
        "A001",
        "张三",
        "138 1234 5678",
        "ZhangSan@Example.com",
        "男",
        "1990年3月15日",
        "华为技术有限公司",
        "VIP；重点",
        "老客户",
        "VIP",
    ],
    ["A002", "李四", "+86 139-0000-1111", "", "女", "1985/7/1", "", "", "", "高"],
    ["A003", "王五", "12345", "bad@", "x", "15/03/1990", "", "", "", "金牌"],
    ["A004", "张三", "13812345678", "", "男", "", "", "", "同名同号", ""],
]


def write_csv(path, rows, encoding="gb18030", delimiter=","):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run(path, actor, *, dry_run=False, **options):
    job = import_job_create(path=path, filename=path.name, actor=actor, **options)
    return job, import_run(job=job, actor=actor, dry_run=dry_run)


def test_a_gbk_excel_csv_with_chinese_headers_imports_normalised(tmp_path, admin_user):
    job, counts = run(write_csv(tmp_path / "客户.csv", [HEADER, *ROWS]), admin_user)
    assert job.encoding == "gb18030"
    assert job.mapping["手机号码"] == "phones" and job.mapping["编号"] == "external_id"
    assert (counts.rows, counts.created, counts.rejected, counts.possible_duplicates) == (4, 3, 1, 1)
    zhang = Customer.objects.get(external_ids__value="A001")
    assert zhang.display_name == "张三" and zhang.gender == "male" and zhang.birthday == date(1990, 3, 15)
    assert zhang.value_tier == "vip" and zhang.notes == "老客户" and zhang.company == "华为技术有限公司"
    assert [p.number for p in zhang.phones.all()] == ["+8613812345678"]
    assert [e.address for e in zhang.emails.all()] == ["zhangsan@example.com"]
    assert sorted(t.name for t in zhang.tags.all()) == ["VIP", "重点"]
    assert Customer.objects.get(external_ids__value="A002").value_tier == "high"  # a label, in Chinese
    assert AuditEvent.objects.filter(action="customer.import").count() == 3


def test_every_problem_of_a_rejected_row_is_reported_by_column_without_the_value(tmp_path, admin_user):
    job, _ = run(write_csv(tmp_path / "c.csv", [HEADER, *ROWS]), admin_user)
    errors = {(e.row, e.column) for e in ImportRowError.objects.filter(job=job)}
    assert errors == {(4, "手机号码"), (4, "邮箱"), (4, "生日"), (4, "客户等级")}
    messages = " ".join(ImportRowError.objects.values_list("message", flat=True))
    assert "12345" not in messages and "bad@" not in messages and "金牌" not in messages


def test_the_dry_run_writes_nothing_and_predicts_the_import(tmp_path, admin_user):
    path = write_csv(tmp_path / "c.csv", [HEADER, *ROWS])
    job = import_job_create(path=path, filename="c.csv", actor=admin_user)
    predicted = import_run(job=job, actor=admin_user, dry_run=True)
    assert Customer.objects.count() == 0 and not ExternalId.objects.exists()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.CHECKED and job.dry_run_counts == vars(predicted)
    assert import_run(job=job, actor=admin_user) == predicted


def test_reimport_by_external_id_updates_instead_of_duplicating(tmp_path, admin_user):
    run(write_csv(tmp_path / "a.csv", [HEADER, *ROWS]), admin_user)
    _, again = run(write_csv(tmp_path / "a.csv", [HEADER, *ROWS]), admin_user)
    assert (again.created, again.unchanged, again.updated) == (0, 3, 0)
    changed = [HEADER, ["A002", "李四", "", "lisi@example.cn", "", "", "", "", "", ""]]
    _, counts = run(write_csv(tmp_path / "b.csv", changed), admin_user)
    assert (counts.created, counts.updated) == (0, 1)
    lisi = Customer.objects.get(external_ids__value="A002")
    assert [e.address for e in lisi.emails.all()] == ["lisi@example.cn"]
    assert [p.number for p in lisi.phones.all()] == ["+8613900001111"]  # an empty cell leaves the phone alone
    assert Customer.objects.count() == 3


def test_a_row_matching_an_existing_phone_is_flagged_or_updates_when_asked(tmp_path, admin_user):
    existing = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}])
    rows = [["姓名", "手机"], ["张三", "138-1234-5678"]]
    _, counts = run(write_csv(tmp_path / "a.csv", rows), admin_user)
    assert (counts.created, counts.possible_duplicates) == (1, 1)
    flag = DuplicateCandidate.objects.get()
    assert flag.other == existing and flag.reason == "same_phone" and flag.status == "open"
    _, counts = run(
        write_csv(tmp_path / "b.csv", [["姓名", "手机", "公司"], ["张三", "13812345678", "华为"]]), admin_user
    )
    assert counts.possible_duplicates == 1  # two customers have it now: never guess which
    Customer.objects.exclude(pk=existing.pk).delete()
    _, counts = run(
        write_csv(tmp_path / "c.csv", [["姓名", "手机", "公司"], ["张三", "13812345678", "华为"]]),
        admin_user,
        update_existing=True,
    )
    assert (counts.created, counts.updated) == (0, 1)
    existing.refresh_from_db()
    assert existing.company == "华为"


def test_namesakes_with_different_contacts_are_not_flagged(tmp_path, admin_user):
    rows = [["姓名", "手机"], ["王伟", "13800000001"], ["王伟", "13800000002"]]
    _, counts = run(write_csv(tmp_path / "a.csv", rows), admin_user)
    assert (counts.created, counts.possible_duplicates) == (2, 0)


def test_utf8_bom_and_utf16_tab_separated_files(tmp_path, admin_user):
    rows = [
        ["Name", "Mobile", "Email", "Birthday", "Tags"],
        ["Ann Lee 😀", "+1 415 555 0100", "ann@x.com", "1980-05-17", "a|b"],
    ]
    _, counts = run(write_csv(tmp_path / "a.csv", rows, encoding="utf-8-sig"), admin_user)
    assert counts.created == 1
    _, counts = run(write_csv(tmp_path / "b.txt", [["Name", "Email"], ["王芳", "wf@x.cn"]], "utf-16", "\t"), admin_user)
    assert counts.created == 1
    assert Customer.objects.get(display_name="Ann Lee 😀").birthday == date(1980, 5, 17)
    assert Customer.objects.get(display_name="王芳").emails.get().address == "wf@x.cn"


def test_xlsx_with_numbers_and_dates_in_cells(tmp_path, admin_user):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["客户姓名", "手机", "出生日期", "公司名称"])
    sheet.append(["赵六", 13912345678, date(1992, 1, 2), "阿里巴巴"])
    sheet.append([None, None, None, None])
    sheet.append(["钱七", "13912345679", "1993-02-03", None])
    workbook.save(tmp_path / "a.xlsx")
    _, counts = run(tmp_path / "a.xlsx", admin_user)
    assert counts.created == 2
    zhao = Customer.objects.get(display_name="赵六")
    assert zhao.birthday == date(1992, 1, 2) and zhao.phones.get().number == "+8613912345678"


def titled_workbook(path):
    """A sheet as Chinese CRMs and shops export it: a merged title, who exported it when, a blank row, the header,
    the rows and a total."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["客户信息表"])
    sheet.merge_cells("A1:E1")
    sheet.append(["导出时间：2024-05-01 10:00", None, None, "导出人：王经理"])
    sheet.append([])
    sheet.append(["序号", "客户姓名", "手机号码", "邮箱", "公司"])
    sheet.append([1, "张伟", 13812345678, "zhangwei@example.com", "北京星辰科技有限公司"])
    sheet.append([2, "李娜", 13987654321, None, "上海某某贸易"])
    sheet.append(["合计：2 人"])
    workbook.save(path)
    return path


def test_a_title_and_export_lines_above_the_header_are_skipped(tmp_path, admin_user):
    job, counts = run(titled_workbook(tmp_path / "客户信息表.xlsx"), admin_user)
    assert job.header_row == 4 and job.headers == ["序号", "客户姓名", "手机号码", "邮箱", "公司"]
    assert (counts.created, counts.rejected) == (2, 1)
    assert Customer.objects.get(display_name="张伟").emails.get().address == "zhangwei@example.com"
    assert list(ImportRowError.objects.values_list("row", flat=True).distinct()) == [7]  # the total, by sheet row

    lines = ["客户信息表", "导出时间：2024-05-01", ",".join(HEADER), *(",".join(row) for row in ROWS)]
    path = tmp_path / "titled.csv"
    path.write_bytes("\r\n".join(lines).encode("gb18030"))
    table = open_table(path, path.name)
    assert (table.header_row, table.columns) == (3, HEADER)
    assert [number for number, _ in table.rows] == [4, 5, 6, 7]


def test_a_header_with_an_unnamed_column_stays_the_header(tmp_path):
    path = tmp_path / "pandas.csv"
    path.write_text(",姓名,手机\n0,张三,13812345678\n1,李四,13900001111\n", encoding="utf-8")
    table = open_table(path, path.name)
    assert table.header_row == 1 and table.columns[1:] == ["姓名", "手机"]
    assert [number for number, _ in table.rows] == [2, 3]


def test_headers_with_units_or_marks_in_brackets_are_recognised(tmp_path, admin_user):
    from cim.ingest.mapping import auto_map

    mapping = auto_map(["姓名*", "手机号（必填）", "E-mail [optional]", "消费金额(元)", "电话（办公）"])
    assert mapping == {
        "姓名*": "display_name",
        "手机号（必填）": "phones",
        "E-mail [optional]": "emails",
        "消费金额(元)": "",
        "电话（办公）": "phones_work",
    }


def test_the_wizard_and_the_cli_say_where_the_header_was_found(tmp_path, admin_user):
    path = titled_workbook(tmp_path / "客户信息表.xlsx")
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    with path.open("rb") as upload:
        page = client.post("/imports/", {"file": upload}, follow=True).content.decode()
    assert "表头在文件第 4 行" in page and "张伟" in page
    err = io.StringIO()
    call_command("import", "customers", str(path), "--dry-run", stdout=io.StringIO(), stderr=err)
    assert "The header is on row 4" in err.getvalue()


def test_a_killed_import_leaves_whole_batches_and_resumes(tmp_path, admin_user, monkeypatch):
    monkeypatch.setattr(services, "BATCH_ROWS", 2)
    rows = [["姓名", "手机"]] + [[f"客户{i}", f"1380000{i:04d}"] for i in range(5)]
    job = import_job_create(path=write_csv(tmp_path / "a.csv", rows), filename="a.csv", actor=admin_user)
    real_create = importer.Importer._create
    calls = []

    def crash_on_second_batch(self, creates, counts):
        calls.append(1)
        real_create(self, creates, counts)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were killed mid-batch

    monkeypatch.setattr(importer.Importer, "_create", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        import_run(job=job, actor=admin_user)
    job.refresh_from_db()
    assert (job.rows_done, Customer.objects.count(), job.status) == (3, 2, ImportJob.Status.RUNNING)
    monkeypatch.setattr(importer.Importer, "_create", real_create)
    counts = import_run(job=job, actor=admin_user)
    assert Customer.objects.count() == 5 and counts.created == 5
    assert sorted(Customer.objects.values_list("display_name", flat=True)) == [f"客户{i}" for i in range(5)]


def test_the_cli_imports_resumes_and_reports_json(tmp_path, admin_user):
    path = write_csv(tmp_path / "a.csv", [HEADER, *ROWS])
    out = io.StringIO()
    call_command("import", "customers", str(path), "--dry-run", "--json", stdout=out)
    dry = json.loads(out.getvalue().strip().splitlines()[-1])
    assert dry["dry_run"] and dry["created"] == 3 and Customer.objects.count() == 0
    out = io.StringIO()
    call_command("import", "customers", str(path), "--json", "--source", "crm", stdout=out)
    real = json.loads(out.getvalue().strip().splitlines()[-1])
    assert {k: real[k] for k in ("rows", "created", "updated", "unchanged", "rejected", "possible_duplicates")} == {
        "rows": 4, "created": 3, "updated": 0, "unchanged": 0, "rejected": 1, "possible_duplicates": 1
    }  # fmt: skip
    assert ExternalId.objects.filter(system="crm").count() == 3
    out = io.StringIO()
    call_command("import", "errors", str(real["job"]), stdout=out)
    assert out.getvalue().splitlines()[0] == "row,column,reason" and len(out.getvalue().splitlines()) == 5


@override("en")
def test_the_cli_refuses_an_unreadable_file(tmp_path, admin_user):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(Exception, match="empty"):
        call_command("import", "customers", str(tmp_path / "empty.csv"))


@override("en")
def test_zip_bombs_and_entity_expansion_are_refused(tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 50_000_000)
    with pytest.raises(FileProblem, match="zip bomb"):
        open_table(bomb, "bomb.xlsx")
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["name"])
    workbook.save(tmp_path / "laughs.xlsx")
    laughs = tmp_path / "laughs2.xlsx"
    entities = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{"&lol%s;" % (i - 1 if i > 1 else "") * 10}">' for i in range(1, 10))
        + "]>"
    )
    with zipfile.ZipFile(tmp_path / "laughs.xlsx") as source, zipfile.ZipFile(laughs, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = entities.encode() + data.replace(b"<t>name</t>", b"<t>&lol9;</t>")
            target.writestr(item, data)
    with pytest.raises(FileProblem, match="billion laughs"):
        table = open_table(laughs, "laughs2.xlsx")
        list(table.rows)


def test_the_wizard_uploads_maps_dry_runs_and_imports(tmp_path, admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    upload = io.BytesIO("姓名,手机,备注栏\n张三,13812345678,x\n".encode("gb18030"))
    upload.name = "客户.csv"
    response = client.post("/imports/", {"file": upload, "source_channel": "event"}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "张三" in page and "备注栏" in page
    job = ImportJob.objects.get()
    response = client.post(
        f"/imports/{job.pk}/mapping/", {"map-0": "display_name", "map-1": "phones", "map-2": "notes", "dry_run": "1"}
    )
    assert response.status_code == 302
    task = DBTaskResult.objects.get()
    task.task.call(**task.args_kwargs["kwargs"])
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "试运行" in page and Customer.objects.count() == 0
    client.post(f"/imports/{job.pk}/start/")
    task = DBTaskResult.objects.exclude(pk=task.pk).get()
    task.task.call(**task.args_kwargs["kwargs"])
    customer = Customer.objects.get()
    assert customer.notes == "x" and customer.source_channel == "event"


def test_the_wizard_shows_a_file_error_in_the_users_language(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    upload = io.BytesIO(b"")
    upload.name = "a.csv"
    response = client.post("/imports/", {"file": upload})
    assert response.status_code == 200 and "客户" in response.content.decode()


def test_csv_rows_that_cannot_be_read_are_reported_by_row_and_blank_rows_skipped(tmp_path):
    lines = [
        "姓名,手机号码".encode("gb18030"),
        "张三,13812345678".encode("gb18030"),
        b" , \t",  # blank: skipped, not reported
        "李四,139,多出一格".encode("gb18030"),
        b"\xff\xfe,13900001111",  # not GB18030 text
        ("王五," + "9" * 32_768).encode("gb18030"),  # a cell longer than Excel allows
        "赵六,13700001111".encode("gb18030"),
        *(f"客户{i}号欧阳明月,1370000{i:04d}".encode("gb18030") for i in range(20)),
    ]
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\r\n".join(lines))
    with override("en"):
        rows = list(open_table(path, path.name).rows)
    assert [number for number, _ in rows[:5]] == [2, 4, 5, 6, 7]
    assert rows[0][1] == {"姓名": "张三", "手机号码": "13812345678"}
    assert "3 cells" in rows[1][1].message
    assert "not valid gb18030 text" in rows[2][1].message
    assert "32767" in rows[3][1].message.replace(",", "")
    assert rows[4][1] == {"姓名": "赵六", "手机号码": "13700001111"} and len(rows) == 25


def test_a_western_csv_with_a_few_accents_is_not_taken_for_damaged_utf8(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes("name,phone\r\nJosé Álvarez,+34 612 345 678\r\nAnna Smith,+44 7700 900123\r\n".encode("cp1252"))
    rows = list(open_table(path, path.name).rows)
    assert [record["name"] for _, record in rows] == ["José Álvarez", "Anna Smith"]


@pytest.mark.parametrize(
    ("encoding", "expected"), [("big5hkscs", "big5hkscs"), ("big5", "big5hkscs"), ("gbk", "gb18030")]
)
def test_big5_from_hong_kong_and_taiwan_is_not_read_as_gb18030(tmp_path, encoding, expected):
    """GB18030 decodes Big5 bytes without an error, into nonsense (陳大文 as 朝ゅ…): the file must be read as Big5,
    while the same text saved in GBK stays GB18030."""
    text = (
        "姓名,手機,地址,備註\r\n陳大文,91234567,香港九龍旺角彌敦道100號,老客戶\r\n"
        "林美玲,0912345678,台北市信義區松仁路,VIP會員\r\n"
    )
    path = tmp_path / "客戶.csv"
    path.write_bytes(text.encode(encoding))
    table = open_table(path, path.name)
    assert table.encoding == expected and table.columns == ["姓名", "手機", "地址", "備註"]
    assert [record["姓名"] for _, record in table.rows] == ["陳大文", "林美玲"]


def test_a_western_file_that_gb18030_would_also_decode_is_read_as_windows_1252(tmp_path):
    """Each accented letter and the one after it make a valid GB18030 pair: Jürgen Müller would come out as
    J黵gen M黮ler, without an error."""
    path = tmp_path / "kunden.csv"
    path.write_bytes("Name,Stadt\r\nJürgen Müller,Köln\r\nFrançois Dupré,Paris\r\n".encode("cp1252"))
    table = open_table(path, path.name)
    assert table.encoding == "cp1252"
    assert [record["Name"] for _, record in table.rows] == ["Jürgen Müller", "François Dupré"]


def test_the_encoding_chosen_on_the_page_the_api_or_the_cli_wins_over_the_one_found(tmp_path, admin_user, api_client):
    path = tmp_path / "customers.csv"
    path.write_bytes("name,phone\r\n陳大文,13812345678\r\n".encode("big5hkscs"))
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    with path.open("rb") as upload:
        page = client.post("/imports/", {"file": upload}, follow=True).content.decode()
    assert "文本按 Big5 / Big5-HKSCS 编码读取" in page and "陳大文" in page
    with path.open("rb") as upload:
        page = client.post("/imports/", {"file": upload, "encoding": "gb18030"}, follow=True).content.decode()
    assert "文本按 GB18030 / GBK / GB2312 编码读取" in page and "陳大文" not in page
    job = ImportJob.objects.latest("id")
    assert job.encoding == "gb18030"
    import_run(job=job, actor=admin_user)  # the file is read again in the encoding chosen
    assert Customer.objects.get(phones__match_key__isnull=False).display_name != "陳大文"

    api = api_client(admin_user)
    content = path.read_bytes()
    created = api.post("/api/v1/imports", {"file": SimpleUploadedFile("a.csv", content), "encoding": "big5hkscs"})
    assert created.status_code == 201 and created.json()["encoding"] == "big5hkscs"
    refused = api.post("/api/v1/imports", {"file": SimpleUploadedFile("a.csv", content), "encoding": "ebcdic"})
    assert refused.status_code == 422 and refused.json()["details"][0]["field"] == "encoding"
    err = io.StringIO()
    call_command("import", "customers", str(path), "--encoding", "big5hkscs", stdout=io.StringIO(), stderr=err)
    assert "Reading the text as Big5 / Big5-HKSCS." in err.getvalue()
    assert Customer.objects.filter(display_name="陳大文").exists()


def test_utf16_chosen_for_a_file_without_a_byte_order_mark_is_read_as_windows_writes_it(tmp_path):
    path = tmp_path / "export.txt"
    path.write_bytes("姓名\t手机\r\n张三\t13812345678\r\n".encode("utf-16-le"))
    assert [record["姓名"] for _, record in open_table(path, path.name, encoding="utf-16").rows] == ["张三"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), name=st.sampled_from(["a.csv", "a.xlsx", "a.vcf", "a.jsonl", "a.json", "a.txt"]))
def test_any_bytes_give_a_file_problem_or_rows_never_an_exception(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    try:
        table = open_table(path, name)
    except FileProblem:
        return
    for number, record in table.rows:
        assert isinstance(number, int) and isinstance(record, dict | RowProblem)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_export_then_import_gives_identical_records(tmp_path, admin_user, fmt):
    from cim.customers.configuration import custom_field_create
    from cim.customers.filters import CustomerFilter
    from cim.ingest.export import customers_export

    for key, kind, choices in (
        ("shoe_size", "number", []),
        ("first_visit", "date", []),
        ("level", "choice", ["金卡", "银卡"]),
        ("hobbies", "multi_choice", ["读书", "旅行", "a|b"]),
        ("wechat", "text", []),
    ):
        custom_field_create(key=key, label_zh=key, label_en=key, field_type=kind, choices=choices, actor=admin_user)
    make_customer(
        admin_user,
        display_name="欧阳娜娜 😀",
        family_name="欧阳",
        given_name="娜娜",
        alias="=SUM(A1)",
        english_name="Nana Ouyang",
        gender="female",
        birthday="1999-12-31",
        company="小米科技有限责任公司",
        job_title="设计师",
        customer_type="consumer",
        source_channel="wechat",
        value_tier="vip",
        region="south",
        lifecycle_stage="loyal",
        notes="第一行\n第二行, with a comma; and “quotes”",
        tags=["VIP", "潜在客户", "a|b"],
        phones=[{"number": "13800138000", "is_primary": True}, {"number": "+1 415 555 0100"}],
        emails=[{"address": "nana@example.cn"}],
        addresses=[
            {
                "province": "广东省",
                "city": "深圳市",
                "district": "南山区",
                "street": "科技园路1号",
                "postal_code": "518000",
            }
        ],
        custom_fields={
            "shoe_size": 37.5,
            "first_visit": "2024-02-29",
            "level": "金卡",
            "hobbies": ["读书", "a|b"],
            "wechat": "-nana",
        },
    )
    make_customer(
        admin_user,
        kind="organization",
        display_name="深圳市腾讯计算机系统有限公司",
        uscc="91440300708461136T",
        industry="technology",
        company_size="1000+",
    )
    fields = PLAIN_FIELDS  # every stored field of the form and the API, owner and team included

    def snapshot():
        records = []
        for c in Customer.objects.order_by("display_name"):
            record = {f: getattr(c, f) for f in fields}
            record["tags"] = sorted(t.name for t in c.tags.all())
            record["phones"] = sorted(p.number for p in c.phones.all())
            record["emails"] = sorted(e.address for e in c.emails.all())
            record["address"] = [(a.province, a.city, a.district, a.street, a.postal_code) for a in c.addresses.all()]
            records.append(record)
        return records

    before = snapshot()
    path = tmp_path / f"export.{fmt}"
    with path.open("wb") as out:
        assert customers_export(user=admin_user, filters=CustomerFilter(), fmt=fmt, out=out) == 2
    Customer.objects.all().delete()
    _job, counts = run(path, admin_user)
    assert (counts.created, counts.rejected) == (2, 0)
    assert snapshot() == before


def test_running_the_cli_again_on_a_killed_import_resumes_it(tmp_path, admin_user):
    path = write_csv(tmp_path / "a.csv", [HEADER, *ROWS])
    killed = import_job_create(path=path, filename="a.csv", actor=admin_user)
    ImportJob.objects.filter(pk=killed.pk).update(status=ImportJob.Status.RUNNING)
    out, err = io.StringIO(), io.StringIO()
    call_command("import", "customers", str(path), "--json", stdout=out, stderr=err)
    assert json.loads(out.getvalue().splitlines()[-1])["job"] == killed.pk
    assert "Resuming" in err.getvalue() and ImportJob.objects.count() == 1


def test_an_import_is_seen_by_its_owner_and_administrators_only(tmp_path, users):
    marketing, manager = users["marketing"], users["manager"]
    job = import_job_create(path=write_csv(tmp_path / "a.csv", [HEADER, *ROWS]), filename="a.csv", actor=marketing)
    for user, status in ((marketing, 200), (users["administrator"], 200), (manager, 404), (users["sales"], 403)):
        client = Client()
        client.force_login(user)
        assert client.get(f"/imports/{job.pk}/").status_code == status, user.role


def test_rows_prepared_in_a_second_process_import_as_in_this_one(tmp_path, admin_user, monkeypatch):
    """Large files are validated in a forked process while this one writes; small ones here. Same outcome,
    duplicates across batches and within one included."""
    monkeypatch.setattr(services, "BATCH_ROWS", 3)
    rows = [
        HEADER,
        *ROWS,
        *([f"B{i:03d}", f"客户{i}", f"1390000{i % 7:04d}", "", "", "", "", "", "", ""] for i in range(20)),
    ]
    outcomes = []
    for parallel_bytes in (10**9, 0):
        monkeypatch.setattr(importer, "PARALLEL_BYTES", parallel_bytes)
        path = write_csv(tmp_path / f"{parallel_bytes}.csv", rows)
        job = import_job_create(path=path, filename=path.name, actor=admin_user)
        predicted = import_run(job=job, actor=admin_user, dry_run=True)
        counts = import_run(job=job, actor=admin_user)
        made = Customer.objects.filter(external_ids__value__startswith="B").order_by("id")
        outcomes.append(
            (
                counts,
                predicted == counts,
                sorted(ImportRowError.objects.filter(job=job, dry_run=False).values_list("row", "column")),
                [(c.display_name, [p.number for p in c.phones.all()]) for c in made],
                DuplicateCandidate.objects.filter(detected_by=f"import:{job.pk}").count(),
            )
        )
        Customer.objects.all().delete()
    assert outcomes[0] == outcomes[1]
    counts, predicted_right, _errors, made, flagged = outcomes[0]
    # Rows 7-19 repeat an earlier phone (those from 14 on, two earlier ones), and A004 repeats A001.
    assert predicted_right and counts.created == 23 and counts.possible_duplicates == 14 and flagged == 20


def test_a_repeated_external_id_is_rejected_with_the_row_where_it_first_appeared(tmp_path, admin_user, monkeypatch):
    """Within a batch and across batches alike, in the dry run as in the import. Row 1 is the header."""
    monkeypatch.setattr(services, "BATCH_ROWS", 2)
    rows = [["编号", "姓名"], ["E1", "甲"], ["E2", "乙"], ["E1", "丙"], ["E3", "丁"], ["E3", "戊"], ["E2", "己"]]
    job = import_job_create(path=write_csv(tmp_path / "a.csv", rows), filename="a.csv", actor=admin_user)
    predicted = import_run(job=job, actor=admin_user, dry_run=True)
    counts = import_run(job=job, actor=admin_user)
    assert predicted == counts and (counts.created, counts.rejected) == (3, 3)
    assert sorted(Customer.objects.values_list("display_name", flat=True)) == ["丁", "乙", "甲"]
    for dry_run in (True, False):
        errors = ImportRowError.objects.filter(job=job, dry_run=dry_run).order_by("row")
        assert [(e.row, e.message) for e in errors] == [
            (4, "第 2 行已有相同的外部编号。"),
            (6, "第 5 行已有相同的外部编号。"),
            (7, "第 3 行已有相同的外部编号。"),
        ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from([target for target in TARGETS if target not in ("owner", "team", "number")]),
            st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_values_in_any_column_import_or_reject_their_row_never_an_exception(tmp_path, admin_user, rows):
    columns = ["display_name", *(t for t in TARGETS if t not in ("owner", "team", "number", "display_name"))]
    path = tmp_path / "fuzz.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row.get(column, "") for column in columns] for row in [{"display_name": "甲"}, *rows])
    job = import_job_create(path=path, filename=path.name, actor=admin_user)
    counts = import_run(job=job, actor=admin_user)
    assert counts.rows >= 1 and counts.created + counts.updated + counts.unchanged + counts.rejected == counts.rows


def test_tags_that_unicode_folds_are_one_tag_and_a_tag_folding_to_nothing_is_left_out(tmp_path, admin_user):
    """Found by the fuzz test above: a tag of "¯" (NFKC: a space and a combining macron) stopped the import."""
    path = write_csv(tmp_path / "tags.csv", [["姓名", "标签"], ["钱多多", "ＶＩＰ|VIP|¯"]], encoding="utf-8")
    _, counts = run(path, admin_user)
    assert counts.created == 1
    tags = set(Customer.objects.get(display_name="钱多多").tags.values_list("name", flat=True))
    assert "VIP" in tags and "ＶＩＰ" not in tags
