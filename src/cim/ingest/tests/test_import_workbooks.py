"""Importing spreadsheets as businesses have them: Excel 97–2003, web pages saved as .xls, workbooks of several
sheets, and the contacts exports of Google and Outlook."""

import io
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils.translation import override
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cim.customers.models import Customer
from cim.ingest.models import ImportRowError
from cim.ingest.readers import FileProblem, RowProblem, open_table
from cim.ingest.tests.test_import import run, write_csv


def erp_workbook(path):
    """An Excel 97–2003 export as accounting and ERP systems write it: a sheet of instructions first, a hidden one
    holding a drop-down's choices, then the data under a merged title, with a phone typed as a number, a date cell
    and a company merged over the two rows of its contacts."""
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    workbook.add_sheet("填写说明").write(0, 0, "请在“客户”表中填写，手机号必填。")
    workbook.add_sheet("选项").write(0, 0, "男")
    workbook.get_sheet(1).visibility = 1
    sheet = workbook.add_sheet("客户")
    sheet.write_merge(0, 0, 0, 4, "客户信息表")
    for column, header in enumerate(["姓名", "手机", "生日", "公司", "备注"]):
        sheet.write(2, column, header)
    sheet.write(3, 0, "周杰")
    sheet.write(3, 1, 13812345678)
    sheet.write(3, 2, date(1990, 3, 15), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    sheet.write_merge(3, 4, 3, 3, "深圳前海微众银行")
    sheet.write(4, 0, "吴芳😀")
    sheet.write(4, 1, "139 0013 8000")
    sheet.write(4, 4, "老客户")
    workbook.save(str(path))
    return path


def test_old_excel_xls_files_import_from_the_sheet_that_holds_the_customers(tmp_path, admin_user):
    job, counts = run(erp_workbook(tmp_path / "客户导出.xls"), admin_user)
    assert (job.file_format, job.sheet, job.header_row) == ("xls", "客户", 3)
    assert (counts.created, counts.rejected) == (2, 0)
    zhou, wu = Customer.objects.get(display_name="周杰"), Customer.objects.get(display_name="吴芳😀")
    assert zhou.birthday == date(1990, 3, 15) and zhou.phones.get().number == "+8613812345678"
    assert zhou.company == wu.company == "深圳前海微众银行"
    assert wu.phones.get().number == "+8613900138000"
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    with (tmp_path / "客户导出.xls").open("rb") as upload:
        page = client.post("/imports/", {"file": upload}, follow=True).content.decode()
    assert "读取的是工作表“客户”" in page and "表头在文件第 3 行" in page and "深圳前海微众银行" in page


def test_a_web_page_table_saved_as_xls_imports(tmp_path, admin_user):
    page = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>
<table border="1"><tr><td colspan="4" align="center"><b>会员列表</b></td></tr>
<tr><th>会员姓名</th><th>联系电话</th><th>所属门店</th><th>备注</th></tr>
<tr><td>孙&nbsp;丽</td><td>13812345678<br>021-6234 5678</td><td rowspan="2">徐汇店</td><td>A&amp;B</td></tr>
<tr><td>郑&#x6D69;</td><td>13900001111</td><td></td></tr>
</table></body></html>"""
    path = tmp_path / "member_list.xls"
    path.write_bytes(page.encode("gb18030"))
    table = open_table(path, path.name)
    assert (table.file_format, table.header_row, table.columns) == (
        "html",
        2,
        ["会员姓名", "联系电话", "所属门店", "备注"],
    )
    rows = [record for _number, record in table.rows]
    assert rows[1] == {"会员姓名": "郑浩", "联系电话": "13900001111", "所属门店": "徐汇店", "备注": ""}
    _, counts = run(path, admin_user, mapping={"会员姓名": "display_name", "联系电话": "phones", "备注": "notes"})
    assert (counts.created, counts.rejected) == (2, 0)
    sun = Customer.objects.get(display_name="孙 丽")
    assert sorted(sun.phones.values_list("number", flat=True)) == ["+8613812345678", "+862162345678"]


def test_a_sheet_named_is_read_and_a_missing_one_is_refused_by_name(tmp_path, admin_user):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "一月"
    workbook.active.append(["姓名", "手机"])
    workbook.active.append(["冯军", "13700001111"])
    february = workbook.create_sheet("二月")
    february.append(["姓名", "手机"])
    february.append(["陈静", "13700002222"])
    path = tmp_path / "客户.xlsx"
    workbook.save(path)
    job, counts = run(path, admin_user, sheet="二月")
    assert job.sheet == "二月" and counts.created == 1 and Customer.objects.filter(display_name="陈静").exists()
    with override("zh-hans"), pytest.raises(ValidationError) as refused:
        run(path, admin_user, sheet="三月")
    assert "没有名为“三月”的工作表" in str(refused.value) and "一月, 二月" in str(refused.value)
    err = io.StringIO()
    call_command("import", "customers", str(path), "--sheet", "一月", "--json", stdout=io.StringIO(), stderr=err)
    assert "Reading the sheet “一月”" in err.getvalue() and Customer.objects.filter(display_name="冯军").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_xls_xml_and_html_tables_give_a_file_problem_or_rows_never_an_exception(tmp_path, data):
    kind = data.draw(st.sampled_from(["xls", "xml2003", "html"]), label="kind")
    if kind == "xml2003":
        content = SPREADSHEET_2003.format(encoding=data.draw(st.sampled_from(["utf-8", "gb2312", "gbk", "no-such"])))
        pieces = [' ss:Index="99999999"', ' ss:Index="7"', ' ss:MergeDown="999999999"', ' ss:MergeAcross="20000"',
                  "<Row>", "</Row>", "<Cell>", "</Cell>", '<Data ss:Type="Number">x</Data>', "&#0;", "<"]  # fmt: skip
        for piece in data.draw(st.lists(st.sampled_from(pieces), max_size=8), label="inserted"):
            at = data.draw(st.integers(0, len(content)))
            content = content[:at] + piece + content[at:]
        path = tmp_path / "a.xls"
        content = content.encode("gb18030")
    elif kind == "xls":
        path = erp_workbook(tmp_path / "a.xls")
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 20), label="damaged bytes")):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    else:
        tags = st.sampled_from(
            [
                "<table>",
                "</table>",
                "<tr>",
                "</tr>",
                "<td>",
                "</td>",
                "<th colspan=9999999>",
                "<td rowspan=x>",
                "<td rowspan=3>",
                "<br>",
                "&nbsp;",
                "&#0;",
                "张三",
                "138",
                "<",
            ]
        )
        content = ("<table>" + "".join(data.draw(st.lists(tags, max_size=60), label="html"))).encode()
        path = tmp_path / "a.xls"
    path.write_bytes(bytes(content))
    try:
        table = open_table(path, path.name)
    except FileProblem:
        return
    for number, record in table.rows:
        assert isinstance(number, int) and isinstance(record, dict | RowProblem)


def test_contacts_exported_by_google_and_outlook_map_their_numbered_columns(tmp_path, admin_user):
    from cim.ingest.mapping import auto_map

    google = ["First Name", "Last Name", "Nickname", "Organization Name", "Organization Title", "Birthday",
              "E-mail 1 - Label", "E-mail 1 - Value", "Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label",
              "Phone 2 - Value", "Address 1 - Formatted"]  # fmt: skip
    mapped = auto_map(google)
    assert {column: mapped[column] for column in google if mapped[column]} == {
        "First Name": "given_name",
        "Last Name": "family_name",
        "Nickname": "alias",
        "Organization Name": "company",
        "Organization Title": "job_title",
        "Birthday": "birthday",
        "E-mail 1 - Value": "emails",
        "Phone 1 - Value": "phones",
        "Phone 2 - Value": "phones",
        "Address 1 - Formatted": "address",
    }
    outlook = auto_map(["First Name", "Last Name", "E-mail Address", "E-mail 2 Address", "Mobile Phone",
                        "Home Phone 2", "Business Phone"])  # fmt: skip
    assert [outlook[c] for c in ("E-mail 2 Address", "Home Phone 2", "Business Phone")] == [
        "emails", "phones_home", "phones_work"
    ]  # fmt: skip
    path = tmp_path / "contacts.csv"
    values = ["明", "黄", "", "", "", "1988-08-08", "* Home", "huangming@example.com", "Mobile",
              "+86 138 1234 5678 ::: +86 139 0000 1111", "", "", "深圳市南山区科技园"]  # fmt: skip
    write_csv(path, [google, values], encoding="utf-8")
    _, counts = run(path, admin_user)
    assert (counts.created, counts.rejected) == (1, 0)
    huang = Customer.objects.get(family_name="黄", given_name="明")
    assert sorted(huang.phones.values_list("number", flat=True)) == ["+8613812345678", "+8613900001111"]


def test_a_back_office_sheet_with_serial_dates_several_phones_a_region_column_and_a_total(tmp_path, admin_user):
    """What a shop's back office exports: birthdays that Excel shows as serial numbers (a date column formatted
    as General), two phones in one cell split by a slash, the address under 所在地区, and a total row whose name
    cell holds a count, which must not become a customer."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["序号", "客户姓名", "手机号码", "电子邮箱", "出生日期", "所在地区", "所在城市"])
    sheet.append(
        [1, "李娜", "13812345679/13812345680", "lina@163.com／li.na@qq.com", 32947, "广东省深圳市南山区科技园"]
    )
    sheet.append([2, "赵磊", "13712345678", None, "99999", None, "杭州市"])
    sheet.append(["合计", "2人"])
    path = tmp_path / "会员.xlsx"
    workbook.save(path)
    with override("zh-hans"):
        job, counts = run(path, admin_user)
    assert (job.mapping["所在地区"], job.mapping["所在城市"]) == ("address", "city")
    assert (counts.created, counts.rejected) == (1, 2)
    li = Customer.objects.get(display_name="李娜")
    assert li.birthday == date(1990, 3, 15)
    assert sorted(li.phones.values_list("number", flat=True)) == ["+8613812345679", "+8613812345680"]
    assert sorted(li.emails.values_list("address", flat=True)) == ["li.na@qq.com", "lina@163.com"]
    assert li.addresses.values_list("city", "district").get() == ("深圳市", "南山区")
    errors = dict(ImportRowError.objects.filter(job=job).values_list("row", "message"))
    assert "日期" in errors[3]  # a serial number in the future is no birthday
    assert errors[4] == "这是合计行（“合计”），不是一条记录。"
    assert not Customer.objects.filter(display_name="2人").exists()


def test_numbers_excel_wrote_in_scientific_notation_are_refused_and_yearless_birthdays_kept_in_notes(
    tmp_path, admin_user
):
    """Saved from a General column, a CSV holds 1.38123E+10 for a phone: its digits are gone, and the reason must
    say how to get them back rather than only that the number is not valid. A birthday without its year (members
    give one for birthday offers) cannot fill the date, but the customer is imported and the day kept."""
    rows = [
        ["姓名", "手机", "身份证号", "会员号", "生日"],
        ["王芳", "1.38123E+10", "", "", ""],
        ["刘强", "13812345678", "4.40305E+17", "1.23457E+11", "1990-03-15"],
        ["孙丽", "13812345679", "", "M0001", "3月5日"],
    ]
    with override("en"):
        job, counts = run(write_csv(tmp_path / "会员.csv", rows), admin_user)
    assert (counts.created, counts.rejected) == (1, 2)
    errors = sorted(ImportRowError.objects.filter(job=job).values_list("row", "column", "message"))
    assert [(row, column) for row, column, _m in errors] == [(2, "手机"), (3, "会员号"), (3, "身份证号")]
    lost = "Excel saved this number in scientific notation, which loses its last digits"
    assert all(message.startswith(lost) for _r, _c, message in errors)
    sun = Customer.objects.get(display_name="孙丽")
    assert sun.birthday is None and sun.notes == "Birthday (year not given): 03-05"


SPREADSHEET_2003 = """<?xml version="1.0" encoding="{encoding}"?>
<?mso-application progid="Excel.Sheet"?>
<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:o="urn:schemas-microsoft-com:office:office"
 xmlns:x="urn:schemas-microsoft-com:office:excel" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:html="http://www.w3.org/TR/REC-html40">
 <Worksheet ss:Name="字典">
  <Table><Row><Cell><Data ss:Type="String">男</Data></Cell></Row></Table>
  <WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel"><Visible>SheetHidden</Visible></WorksheetOptions>
 </Worksheet>
 <Worksheet ss:Name="客户列表">
  <Table ss:ExpandedColumnCount="5">
   <Row><Cell ss:MergeAcross="4"><Data ss:Type="String">客户信息表</Data></Cell></Row>
   <Row ss:Index="3"><Cell><Data ss:Type="String">姓名</Data></Cell><Cell><Data ss:Type="String">手机</Data></Cell>
    <Cell><Data ss:Type="String">生日</Data></Cell><Cell><Data ss:Type="String">公司</Data></Cell>
    <Cell><Data ss:Type="String">身份证号</Data></Cell></Row>
   <Row><Cell><ss:Data ss:Type="String"><html:B>欧阳</html:B>明月</ss:Data></Cell>
    <Cell><Data ss:Type="Number">13812345678</Data></Cell>
    <Cell><Data ss:Type="DateTime">1990-03-15T00:00:00.000</Data></Cell>
    <Cell ss:MergeDown="1"><Data ss:Type="String">深圳前海微众银行</Data></Cell></Row>
   <Row><Cell><Data ss:Type="String">吴芳</Data></Cell><Cell><Data ss:Type="String">139 0013 8000</Data></Cell>
    <Cell ss:Index="5"><Data ss:Type="Number">4.40305199003151E+17</Data></Cell></Row>
  </Table>
 </Worksheet>
</Workbook>
"""


def test_excel_2003_xml_workbooks_import_from_their_visible_sheet(tmp_path, admin_user):
    """What older .NET and Java back-ends export as "Excel": SpreadsheetML under a .xls name, in GB2312 or UTF-8,
    with a hidden sheet of choices, a merged title, rows that skip ahead, rich text, a company merged down over its
    two contacts, and an ID number typed as a number, which Excel has cut to 15 digits."""
    path = tmp_path / "客户导出.xls"
    path.write_bytes(SPREADSHEET_2003.format(encoding="gb2312").encode("gb2312"))
    table = open_table(path, path.name)
    assert (table.file_format, table.sheet, table.sheets, table.header_row) == ("xml2003", "客户列表", ["客户列表"], 3)
    with override("en"):
        job, counts = run(path, admin_user)
    assert (counts.created, counts.rejected) == (1, 1)
    ouyang = Customer.objects.get(display_name="欧阳明月")
    assert ouyang.phones.get().number == "+8613812345678" and ouyang.birthday == date(1990, 3, 15)
    assert ouyang.company == "深圳前海微众银行"
    error = ImportRowError.objects.get(job=job)
    assert (error.row, error.column) == (5, "身份证号") and error.message.startswith("Excel saved this number")


@pytest.mark.parametrize(
    "content",
    [
        SPREADSHEET_2003.format(encoding="utf-8").replace('<Worksheet ss:Name="客户列表">', "<Worksheet>", 1)[:900],
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet><Table><Row><Cell><Data>&lol;'
        "</Data></Cell></Row></Table></Worksheet></Workbook>",
    ],
    ids=["cut short", "entities"],
)
def test_damaged_or_hostile_excel_2003_xml_gives_a_file_problem(tmp_path, content):
    path = tmp_path / "bad.xml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileProblem):
        list(open_table(path, path.name).rows)


@pytest.mark.parametrize(
    ("written", "kept"), [("--0315", "03-15"), ("0315", "03-15"), ("3/15", "03-15"), ("2月29日", "02-29"), ("11", None)]
)
def test_a_birthday_without_its_year_is_kept_in_the_notes_and_a_bare_number_refused(
    tmp_path, admin_user, written, kept
):
    with override("en"):
        _job, counts = run(write_csv(tmp_path / "a.csv", [["姓名", "生日"], ["周杰", written]]), admin_user)
    if kept is None:
        assert (counts.created, counts.rejected) == (0, 1)
    else:
        assert Customer.objects.get().notes == f"Birthday (year not given): {kept}"
