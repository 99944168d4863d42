"""Orders and refunds: totals stay right through refunds and cancellations, on every path (service, import, API)."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils.translation import override
from hypothesis import given, settings
from hypothesis import strategies as st

from cim.activities.history_schemas import OrderInput, ProductInput, RefundInput
from cim.activities.models import Order, OrderLine, Refund
from cim.activities.orders import order_cancel, order_create, order_mark_paid, order_refund, product_save
from cim.activities.selectors import customer_order_summary
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.ingest.models import ImportJob, ImportRowError
from cim.ingest.order_import import MAX_AMOUNT, LinePreparer
from cim.ingest.services import import_job_create, import_run

Status = Order.Status


@pytest.fixture(autouse=True)
def _uploads(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "uploads"


@pytest.fixture
def customer(admin_user):
    return make_customer(admin_user, display_name="王芳", phones=[{"number": "13812345678"}])


def order(customer, actor, *lines, **fields):
    lines = lines or ({"sku": "A1", "name": "茶叶", "quantity": 2, "unit_price": "50.00"},)
    return order_create(customer=customer, data=OrderInput(lines=list(lines), **fields), actor=actor)


def test_order_totals_are_lines_less_discounts(customer, admin_user):
    created = order(
        customer,
        admin_user,
        {"sku": "A1", "quantity": "3", "unit_price": "19.99", "discount": "5", "name": "杯子"},
        {"name": "包装", "unit_price": "2.5"},
        discount="10",
    )
    assert created.lines_amount == Decimal("57.47")  # 3 × 19.99 − 5 + 2.50
    assert created.total_amount == Decimal("47.47")
    assert created.net_amount == Decimal("47.47")
    assert created.status == Status.PAID
    assert OrderLine.objects.filter(order=created).count() == 2


def test_refunds_and_cancellations_are_reflected_in_every_total(customer, admin_user):
    first = order(customer, admin_user)  # 100
    second = order(customer, admin_user, {"name": "茶具", "unit_price": "300"})
    third = order(customer, admin_user, {"name": "礼盒", "unit_price": "80"})
    order_refund(order=first, data=RefundInput(amount="30", reason="破损"), actor=admin_user)
    order_refund(order=second, data=RefundInput(), actor=admin_user)  # all of it
    order_cancel(order=third, actor=admin_user)
    for row in Order.objects.all():
        row.refresh_from_db()
    assert Order.objects.get(pk=first.pk).status == Status.PARTIALLY_REFUNDED
    assert Order.objects.get(pk=second.pk).status == Status.REFUNDED
    assert Order.objects.get(pk=third.pk).net_amount == 0
    summary = customer_order_summary(customer=customer)
    assert summary.spent == Decimal("70.00")
    assert summary.refunded == Decimal("330.00")
    assert summary.orders == 1  # the fully refunded and the cancelled order are no purchases
    assert summary.average == Decimal("70.00")


def test_a_refund_cannot_exceed_what_is_left(customer, admin_user):
    paid = order(customer, admin_user)
    order_refund(order=paid, data=RefundInput(amount="60"), actor=admin_user)
    with pytest.raises(ValidationError) as error:
        order_refund(order=Order.objects.get(pk=paid.pk), data=RefundInput(amount="40.01"), actor=admin_user)
    assert "amount" in error.value.message_dict
    assert Refund.objects.filter(order=paid).count() == 1


def test_refunded_orders_cannot_be_cancelled_and_pending_ones_count_once_paid(customer, admin_user):
    paid = order(customer, admin_user)
    order_refund(order=paid, data=RefundInput(amount="1"), actor=admin_user)
    with pytest.raises(ValidationError):
        order_cancel(order=Order.objects.get(pk=paid.pk), actor=admin_user)
    pending = order(customer, admin_user, status="pending")
    assert pending.net_amount == 0
    order_mark_paid(order=pending, actor=admin_user)
    assert Order.objects.get(pk=pending.pk).net_amount == Decimal("100.00")


def test_catalogue_prices_fill_lines_and_unknown_prices_are_refused(customer, admin_user):
    product_save(data=ProductInput(sku="TEA-01", name="龙井", price="88.00"), actor=admin_user)
    created = order(customer, admin_user, {"sku": "TEA-01", "quantity": 2})
    line = created.lines.get()
    assert (line.name, line.unit_price, line.amount) == ("龙井", Decimal("88.00"), Decimal("176.00"))
    with pytest.raises(ValidationError) as error:
        order(customer, admin_user, {"sku": "NOPE"})
    assert "lines.0.unit_price" in error.value.message_dict


def test_order_numbers_are_unique_per_system_and_archived_customers_take_none(customer, admin_user):
    order(customer, admin_user, number="SO-1", system="tmall")
    order(customer, admin_user, number="SO-1", system="jd")
    with pytest.raises(ValidationError):
        order(customer, admin_user, number="SO-1", system="tmall")
    customer_archive(customer=customer, actor=admin_user)
    with pytest.raises(ValidationError):
        order(customer, admin_user)


def write_csv(path, rows, encoding="utf-8-sig"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def import_orders(path, actor, **options):
    with override("zh-hans"):
        job = import_job_create(path=path, filename=path.name, actor=actor, kind="orders", **options)
        return job, import_run(job=job, actor=actor)


@pytest.mark.parametrize("parallel_bytes", [10**9, 0], ids=["here", "in other processes"])
def test_import_one_row_per_line_in_gbk_with_chinese_headers(
    tmp_path, customer, admin_user, monkeypatch, parallel_bytes
):
    monkeypatch.setattr("cim.ingest.importer.PARALLEL_BYTES", parallel_bytes)
    other = make_customer(admin_user, display_name="李强", emails=[{"address": "li@example.com"}])
    rows = [
        ["订单号", "手机号码", "邮箱", "下单时间", "订单状态", "商品编码", "商品名称", "数量", "单价", "退款金额"],
        ["T1001", "138-1234-5678", "", "2026/3/5 14:30", "交易成功", "A1", "茶叶", "2", "￥50.00", ""],
        ["T1001", "138-1234-5678", "", "2026/3/5 14:30", "交易成功", "A2", "茶杯", "1", "20", ""],
        ["T1002", "", "LI@example.com", "2026-03-06", "部分退款", "A1", "茶叶", "1", "50", "10"],
        ["T1003", "13900000000", "", "2026-03-07", "已付款", "A1", "茶叶", "1", "50", ""],
        ["T1004", "138 1234 5678", "", "昨天", "已取消", "A1", "茶叶", "1", "50", ""],
    ]
    job, counts = import_orders(write_csv(tmp_path / "orders.csv", rows, "gbk"), admin_user)
    assert (counts.rows, counts.created, counts.lines, counts.rejected) == (5, 2, 3, 2)
    t1001 = Order.objects.get(number="T1001")
    assert (t1001.customer_id, t1001.total_amount, t1001.status) == (customer.pk, Decimal("120.00"), Status.PAID)
    assert t1001.ordered_at == datetime(2026, 3, 5, 6, 30, tzinfo=UTC)  # 14:30 in Asia/Shanghai
    t1002 = Order.objects.get(number="T1002")
    assert (t1002.customer_id, t1002.net_amount, t1002.status) == (other.pk, Decimal("40.00"), "partially_refunded")
    errors = dict(ImportRowError.objects.filter(job=job).values_list("row", "message"))
    assert "没有与此行匹配的客户" in errors[5]  # never created (rows count from the header, as in Excel)
    assert "2024-05-01" in errors[6]
    assert Order.objects.count() == 2


def test_a_taobao_order_export_with_its_text_formulas_and_a_total_row(tmp_path, customer, admin_user):
    """Taobao, Alipay and JD write long numbers into their CSV as a formula, ="2087…", so that Excel keeps every
    digit, also quoted as a CSV writer quotes it. The order number is the text inside; the total row is no order."""
    lines = [
        "订单编号,买家会员名,联系手机,订单状态,买家实际支付金额,订单创建时间",
        '="2087654321098765",tb_wang,="13812345678",交易成功,128.00,2026-11-11 00:01:02',
        '"=""2087654321098766""",tb_wang,13812345678,交易关闭,59.90,2026/11/12 10:00',
        "合计,,,,187.90,",
    ]
    path = tmp_path / "ExportOrderList.csv"
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    job, counts = import_orders(path, admin_user)
    assert (counts.created, counts.rejected) == (2, 1)
    assert sorted(Order.objects.values_list("number", "status")) == [
        ("2087654321098765", Status.PAID), ("2087654321098766", Status.CANCELLED)
    ]  # fmt: skip
    assert ImportRowError.objects.get(job=job).message == "这是合计行（“合计”），不是一条记录。"


def test_an_xlsx_order_export_with_the_order_merged_over_its_lines(tmp_path, customer, admin_user):
    """ERP and shop back-ends merge an order's number, buyer and time over the rows of its lines. Each line must
    get them, as in Excel, and not be rejected for an empty order number."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["订单明细"])
    sheet.merge_cells("A1:E1")
    sheet.append(["订单号", "手机号码", "下单时间", "商品名称", "金额"])
    sheet.append(["T2001", "13812345678", "2026-03-05 14:30", "茶叶", 100])
    sheet.append([None, None, None, "茶杯", 20])
    sheet.append([None, None, None, "茶盘", 30])
    sheet.append(["T2002", "13812345678", "2026-03-06 10:00", "茶叶", 50])
    for column in "ABC":
        sheet.merge_cells(f"{column}3:{column}5")
    path = tmp_path / "订单明细.xlsx"
    workbook.save(path)
    _job, counts = import_orders(path, admin_user)
    assert (counts.created, counts.lines, counts.rejected) == (2, 4, 0)
    t2001 = Order.objects.get(number="T2001")
    assert (t2001.customer_id, t2001.total_amount, t2001.lines.count()) == (customer.pk, Decimal("150.00"), 3)


def test_import_one_row_per_order_and_again_changes_nothing(tmp_path, customer, admin_user):
    rows = [["order_id", "customer_number", "order_date", "status", "total"]]
    rows += [
        [f"W{i}", customer.number, f"2026-01-{i:02d}", "refunded" if i == 3 else "paid", "99.5"] for i in range(1, 6)
    ]
    path = write_csv(tmp_path / "orders.csv", rows)
    _job, counts = import_orders(path, admin_user, source="shop")
    assert (counts.created, counts.rejected) == (5, 0)
    assert customer_order_summary(customer=customer).spent == Decimal("398.00")  # the refunded one counts 0
    _job, again = import_orders(path, admin_user, source="shop")
    assert (again.created, again.unchanged) == (0, 5)
    assert Order.objects.count() == 5


def test_an_order_straddling_batches_gets_all_its_lines(tmp_path, customer, admin_user, monkeypatch):
    monkeypatch.setattr("cim.ingest.services.BATCH_ROWS", 2)
    rows = [["订单号", "客户编号", "下单时间", "商品名称", "单价"]]
    rows += [["X1", customer.number, "2026-02-01 10:00", f"商品{i}", "10"] for i in range(5)]
    _job, counts = import_orders(write_csv(tmp_path / "orders.csv", rows), admin_user)
    placed = Order.objects.get(number="X1")
    assert (counts.created, counts.lines, placed.total_amount) == (1, 5, Decimal("50.00"))


def test_a_shop_platform_export_maps_and_reads_its_statuses(tmp_path, customer, admin_user):
    """Headers and order states as Taobao/Tmall and Pinduoduo export them: units in brackets, phrases for states."""
    header = [
        "订单编号",
        "买家会员名",
        "联系手机",
        "订单创建时间",
        "订单状态",
        "宝贝标题",
        "宝贝总数量",
        "用户实付金额(元)",
    ]
    states = {
        "P1": ("交易成功", Status.PAID),
        "P2": ("卖家已发货，等待买家确认", Status.PAID),
        "P3": ("买家已付款，等待卖家发货", Status.PAID),
        "P4": ("等待买家付款", Status.PENDING),
        "P5": ("交易关闭", Status.CANCELLED),
        "P6": ("退款成功", Status.REFUNDED),
        "P7": ("已发货，待收货", Status.PAID),
        "P8": ("Awaiting payment", Status.PENDING),
    }
    rows = [header] + [
        [number, "tb_wangfang", "13812345678", "2026-05-01 09:00:00", state, "西湖龙井", "1", "88.00"]
        for number, (state, _status) in states.items()
    ]
    rows.append(["P9", "tb_wangfang", "13812345678", "2026-05-01 09:00:00", "拼团中", "西湖龙井", "1", "88.00"])
    job, counts = import_orders(write_csv(tmp_path / "淘宝订单.csv", rows, "gb18030"), admin_user)
    assert job.mapping == {
        "订单编号": "order_number", "买家会员名": "external_id", "联系手机": "phone", "订单创建时间": "ordered_at",
        "订单状态": "status", "宝贝标题": "product_name", "宝贝总数量": "quantity", "用户实付金额(元)": "total",
    }  # fmt: skip
    assert (counts.created, counts.rejected) == (8, 1)
    assert dict(Order.objects.values_list("number", "status")) == {n: s for n, (_t, s) in states.items()}
    assert "未知的订单状态" in ImportRowError.objects.get(job=job).message  # 拼团中: not guessed


def test_an_order_export_in_old_excel_with_the_order_merged_over_its_lines(tmp_path, customer, admin_user):
    """An .xls as ERPs export orders: the order's cells merged down over its lines, under a title."""
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("销售订单")
    sheet.write_merge(0, 0, 0, 5, "销售订单明细 2026年4月")
    for column, header in enumerate(["单号", "手机", "日期", "商品编码", "数量", "单价"]):
        sheet.write(1, column, header)
    sheet.write_merge(2, 3, 0, 0, "XS-0001")
    sheet.write_merge(2, 3, 1, 1, 13812345678)
    sheet.write_merge(2, 3, 2, 2, "2026-04-01 10:30")
    for row, (sku, quantity, price) in enumerate([("TEA-01", 2, 128.5), ("CUP-02", 1, 39)], start=2):
        sheet.write(row, 3, sku)
        sheet.write(row, 4, quantity)
        sheet.write(row, 5, price)
    path = tmp_path / "销售订单.xls"
    workbook.save(str(path))
    job, counts = import_orders(path, admin_user)
    assert (job.sheet, job.header_row, counts.created, counts.lines, counts.rejected) == ("销售订单", 2, 1, 2, 0)
    order = Order.objects.get(number="XS-0001")
    assert order.customer == customer and order.total_amount == Decimal("296.00")


def test_the_cli_imports_orders_and_reports_rows(tmp_path, customer, admin_user, capsys):
    rows = [["order_no", "phone", "date", "sku", "qty", "price"], ["C1", "13812345678", "2026-04-01", "A", "2", "5"]]
    call_command("import", "orders", str(write_csv(tmp_path / "o.csv", rows)), "--json")
    out = capsys.readouterr().out
    assert '"created": 1' in out and '"lines": 1' in out
    assert Order.objects.get(number="C1").net_amount == Decimal("10.00")


def test_mapping_must_find_the_order_and_its_customer(tmp_path, admin_user):
    path = write_csv(tmp_path / "o.csv", [["名称", "金额"], ["x", "1"]])
    with pytest.raises(ValidationError) as error, override("zh-hans"):
        import_job_create(path=path, filename="o.csv", actor=admin_user, kind="orders")
    text = " ".join(error.value.message_dict["mapping"])
    assert "订单号" in text and "找到客户" in text


def test_the_import_page_takes_orders_and_maps_their_headers(tmp_path, customer, admin_user, users):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from cim.accounts.roles import Role
    from cim.ingest.models import ImportJob

    rows = [["订单号", "客户编号", "下单时间", "商品名称", "单价"], ["P1", customer.number, "2026-05-01", "茶", "9"]]
    content = write_csv(tmp_path / "o.csv", rows).read_bytes()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    response = client.post("/imports/", {"kind": "orders", "file": SimpleUploadedFile("o.csv", content)})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.kind == "orders"
    assert job.mapping == {"订单号": "order_number", "客户编号": "customer_number", "下单时间": "ordered_at",
                           "商品名称": "product_name", "单价": "unit_price"}  # fmt: skip
    assert "Order total (one row per order)" in client.get(f"/imports/{job.pk}/").content.decode()
    marketing = Client()
    marketing.force_login(users[Role.MARKETING])  # imports customers, not orders
    refused = marketing.post("/imports/", {"kind": "orders", "file": SimpleUploadedFile("o.csv", content)})
    assert refused.status_code == 200 and ImportJob.objects.count() == 1


def test_a_paid_order_sends_the_configured_survey_once(
    customer, admin_user, settings, mailoutbox, django_capture_on_commit_callbacks
):
    from cim.service.models import Survey

    settings.CIM_SURVEY_AFTER_ORDER = "nps"
    customer_with_email = make_customer(admin_user, display_name="周杰", emails=[{"address": "zhou@example.com"}])
    with django_capture_on_commit_callbacks(execute=True):
        placed = order(customer_with_email, admin_user, status="pending")
    assert not Survey.objects.exists()  # not paid yet
    with django_capture_on_commit_callbacks(execute=True):
        order_mark_paid(order=placed, actor=admin_user)
    survey = Survey.objects.get()
    assert (survey.kind, survey.order_id, survey.customer_id) == ("nps", placed.pk, customer_with_email.pk)
    assert mailoutbox[-1].to == ["zhou@example.com"]
    settings.CIM_SURVEY_AFTER_ORDER = ""
    with django_capture_on_commit_callbacks(execute=True):
        order(customer_with_email, admin_user)
    assert Survey.objects.count() == 1


def test_amounts_beyond_what_the_columns_hold_reject_their_row(tmp_path, customer, admin_user):
    rows = [
        ["订单号", "手机", "下单时间", "数量", "单价"],
        ["H1", "13812345678", "2026-04-01", "1", "1e30"],
        ["H2", "13812345678", "2026-04-01", "10000000", "1"],
        ["H3", "13812345678", "2026-04-01", "999999", "9999999999"],
        ["H4", "13812345678", "2026-04-01", "2", "9.90"],
    ]
    job, counts = import_orders(write_csv(tmp_path / "o.csv", rows), admin_user)
    assert (counts.created, counts.rejected) == (1, 3)
    assert list(ImportRowError.objects.filter(job=job).order_by("row").values_list("row", "message")) == [
        (2, "请输入 0 到 9,999,999,999.99 之间的金额，例如 12.50。"),
        (3, "请输入 0 到 999,999 之间的数量。"),
        (4, "这一行的金额超过 9,999,999,999.99。"),
    ]


# Columns of a file, each mapped to an order field, for the preparer fuzzed below.
PREPARED_MAPPING = {
    "单号": "order_number", "手机": "phone", "时间": "ordered_at", "状态": "status", "数量": "quantity",
    "单价": "unit_price", "优惠": "line_discount", "金额": "total",
}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(cells=st.dictionaries(st.sampled_from(list(PREPARED_MAPPING)), st.text(max_size=30)))
def test_any_cells_give_an_order_line_or_row_errors_never_an_exception(cells):
    preparer = LinePreparer(ImportJob(mapping=PREPARED_MAPPING))
    number, errors, _order, _keys, _header, line = preparer.prepare(2, cells)
    assert number == 2 and (errors or line)
    if line:
        assert 0 <= Decimal(line[5]) <= MAX_AMOUNT
