"""Importing what phones and scripts export: vCard contacts (Android's 2.1, iPhone's 3.0) and JSON, as JSON Lines
or as a document of records."""

import json

import pytest
from django.utils.translation import override
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cim.customers.models import Customer
from cim.ingest.models import ImportRowError
from cim.ingest.readers import FileProblem, RowProblem, open_table
from cim.ingest.tests.test_import import run


def test_vcards_from_phones_including_quoted_printable_names(tmp_path, admin_user):
    cards = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E5=BC=A0;=E4=B8=89;;;\r\n"
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E5=BC=A0=E4=B8=89\r\nTEL;CELL:138-1234-5678\r\n"
        "TEL;WORK:010 6552 9988\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Smith;John;;;\r\nFN:John Smith\r\nORG:Acme Inc.;Sales\r\n"
        "TEL;TYPE=CELL:+1 415 555 0100\r\nEMAIL;TYPE=INTERNET,WORK:John@Acme.com\r\nBDAY:1980-05-17\r\n"
        "UID:abc-123\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:李四\r\nTEL;VALUE=uri:tel:+86-139-0000-1111\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\r\nEND:VCARD\r\n"
    )
    (tmp_path / "contacts.vcf").write_text(cards, encoding="utf-8")
    job, counts = run(tmp_path / "contacts.vcf", admin_user)
    assert (counts.created, counts.rejected) == (3, 1)
    zhang = Customer.objects.get(display_name="张三")
    assert (zhang.family_name, zhang.given_name) == ("张", "三")
    assert sorted(p.number for p in zhang.phones.all()) == ["+861065529988", "+8613812345678"]
    john = Customer.objects.get(external_ids__value="abc-123")
    assert (
        john.company == "Acme Inc."
        and john.emails.get().address == "john@acme.com"
        and john.emails.get().kind == "work"
    )
    assert ImportRowError.objects.get(job=job).row == 4


def test_an_iphone_export_with_grouped_lines_a_photo_and_a_yearless_birthday(tmp_path, admin_user):
    """An iPhone's contacts: lines grouped as item1.TEL with their labels, a folded photo, an address in China with
    its postal code, and a birthday kept without its year (--0315), which must not cost the contact."""
    photo = "\r\n ".join(["/9j/4AAQSkZJRgABAQAAAQABAAD" * 3] * 40)
    cards = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.1//EN\r\nN:欧阳;娜娜;;;\r\nFN:欧阳娜娜\r\n"
        "item1.TEL;type=pref:+86 138-1234-5678\r\nitem1.X-ABLabel:_$!<Mobile>!$_\r\n"
        "item2.ADR;type=HOME;type=pref:;;科技园南路88号;深圳市;广东省;518057;中国\r\nitem2.X-ABADR:cn\r\n"
        f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:张;伟;;;\r\nFN:张伟\r\nTEL;type=CELL:13700001111\r\nBDAY:--0315\r\n"
        "END:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:李雷\r\nTEL;CELL;PREF:13600001111\r\nTEL;HOME:0755-86001234\r\n"
        "END:VCARD\r\n"
    )
    (tmp_path / "iPhone.vcf").write_text(cards, encoding="utf-8")
    with override("zh-hans"):
        _job, counts = run(tmp_path / "iPhone.vcf", admin_user)
    assert (counts.created, counts.rejected) == (3, 0)
    ouyang = Customer.objects.get(display_name="欧阳娜娜")
    assert ouyang.phones.get().number == "+8613812345678"
    assert ouyang.addresses.values_list("province", "city", "street", "postal_code").get() == (
        "广东省", "深圳市", "科技园南路88号", "518057"
    )  # fmt: skip
    zhang = Customer.objects.get(display_name="张伟")
    assert zhang.birthday is None and zhang.notes == "生日（未提供年份）：03-15"
    li = Customer.objects.get(display_name="李雷")
    assert sorted(li.phones.values_list("number", "kind")) == [("+8613600001111", "mobile"), ("+8675586001234", "home")]


def test_a_quoted_printable_name_split_over_lines_by_an_android_export_is_read_whole(tmp_path):
    """vCard 2.1 soft line breaks: a value ending in `=` goes on in the next line, here inside a character's bytes."""
    card = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\n"
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E6=AC=A7=E9=98=B3;=E6=98=8E=E6=9C=88=E6=98=8E=\r\n=E6=9C=88;;;\r\n"
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=E6=AC=A7=E9=98=B3=E6=98=8E=\r\n=E6=9C=88=E6=98=8E=E6=9C=88\r\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:=E8=80=81=E5=AE=A2=E6=88=B7=0A=E7=86=9F=E4=BA=BA\r\n"
        "TEL;CELL:138-1234-5678\r\nEND:VCARD\r\n"
    )
    path = tmp_path / "00001.vcf"
    path.write_bytes(card.encode("ascii"))
    [(_number, record)] = list(open_table(path, path.name).rows)
    assert (record["display_name"], record["family_name"], record["given_name"]) == ("欧阳明月明月", "欧阳", "明月明月")
    assert record["notes"] == "老客户\n熟人" and record["phones"] == ["138-1234-5678"]


def test_json_lines_with_lists_and_bad_lines(tmp_path, admin_user):
    lines = [
        json.dumps(
            {"display_name": "周八", "phones": ["13700000001", "13700000002"], "tags": ["新客"]}, ensure_ascii=False
        ),
        "{not json",
        "[1, 2]",
        json.dumps({"display_name": "吴九", "emails": "wu@x.cn"}, ensure_ascii=False),
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(lines), encoding="utf-8")
    job, counts = run(tmp_path / "a.jsonl", admin_user)
    assert (counts.created, counts.rejected) == (2, 2)
    assert Customer.objects.get(display_name="周八").phones.count() == 2
    assert sorted(ImportRowError.objects.filter(job=job).values_list("row", flat=True)) == [2, 3]


def test_a_json_array_from_an_api_imports_with_nested_keys_mapped(tmp_path, admin_user):
    """What APIs and other systems export: an array of objects, pretty-printed or, wrapped in {"data": [...]}, on
    one line; a nested object's keys are columns (address.city) that map by their own name."""
    records = [
        {
            "id": "U1",
            "name": "张三",
            "contact": {"mobile": "13812345678"},
            "address": {"city": "深圳市"},
            "tags": ["VIP"],
        },
        {"id": "U2", "name": "李四", "contact": {"mobile": "13900001111", "email": "LiSi@qq.com"}},
        5,
    ]
    pretty = tmp_path / "customers.json"
    pretty.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    job, counts = run(pretty, admin_user)
    assert job.file_format == "json" and (counts.created, counts.rejected) == (2, 1)
    assert (job.mapping["contact.mobile"], job.mapping["address.city"]) == ("phones", "city")
    zhang = Customer.objects.get(external_ids__value="U1")
    assert zhang.phones.get().number == "+8613812345678" and zhang.addresses.get().city == "深圳市"
    assert ImportRowError.objects.get(job=job).row == 3  # the third item, which is no object

    wrapped = tmp_path / "export"
    wrapped.write_text(json.dumps({"total": 3, "data": records}, ensure_ascii=False), encoding="utf-8")
    table = open_table(wrapped, "export")
    assert table.file_format == "json" and [number for number, _ in table.rows] == [1, 2, 3]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(records, ensure_ascii=False)[:-8], encoding="utf-8")
    rows = list(open_table(cut, cut.name).rows)
    assert isinstance(rows[0][1], dict) and isinstance(rows[-1][1], RowProblem)  # read up to where it breaks


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "utf-16"])
def test_json_saved_by_windows_tools_with_a_bom_in_gbk_or_utf16_is_read(tmp_path, encoding):
    """Notepad and PowerShell 5 write UTF-8 with a BOM or UTF-16 ("Unicode"); Chinese tools GBK. ijson reads UTF-8."""
    path = tmp_path / "customers.json"
    path.write_bytes(json.dumps([{"姓名": "张三", "手机": "13812345678"}], ensure_ascii=False).encode(encoding))
    table = open_table(path, path.name)
    assert table.file_format == "json" and list(table.rows) == [(1, {"姓名": "张三", "手机": "13812345678"})]


def test_json_nested_thousands_deep_is_refused_without_exhausting_memory_or_the_stack(tmp_path):
    """A JSON parser that keeps each event's path makes gigabytes of a file of nested brackets; Python's own
    recurses until it fails. Either would take the import down."""
    brackets = tmp_path / "brackets.json"
    brackets.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(FileProblem, match="64"):
        open_table(brackets, brackets.name)
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"name": "张三"}\n{"name": ' + '{"a": ' * 5000 + "1" + "}" * 5001 + "\n", encoding="utf-8")
    rows = list(open_table(lines, lines.name).rows)
    assert rows[0][1] == {"name": "张三"} and isinstance(rows[1][1], RowProblem)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, indent=st.sampled_from([None, 2]))
def test_any_json_document_gives_a_file_problem_or_one_row_per_item(tmp_path, value, indent):
    path = tmp_path / "any.json"
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent), encoding="utf-8")
    try:
        table = open_table(path, path.name)
    except FileProblem:
        return
    rows = list(table.rows)
    assert all(isinstance(record, dict | RowProblem) for _number, record in rows)
    if table.file_format == "json" and isinstance(value, list):
        assert [number for number, _ in rows] == list(range(1, len(value) + 1))
