"""Importing orders: one row per order line (rows of an order share its number) or one row per order (a total).

Rows are matched to existing customers by customer number, external id, phone or email, in that order; a row
whose customer is not found is reported, never given a new customer. An order already recorded in the same
system (an earlier import of the same file) is skipped and counted as unchanged, so an import can run twice.
The lines of an order may straddle batches: the later lines join the order this job created.

The CPU work (parsing amounts, times, phones) runs in `LinePreparer`, in other processes for big files, and
hands over the values as the database takes them (amounts as text, times adapted), which also cross between
processes several times faster than Decimals and datetimes; the writer only looks customers up and inserts
tuples, set-based, one transaction and checkpoint per batch.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.models import Order, OrderLine, Product, Refund
from cim.audit.services import audit_record
from cim.core.bulk import column_lookup, insert_rows, value_adapter
from cim.ingest.history_rows import (
    CUSTOMER_KEY_TARGETS,
    customer_keys,
    customer_of,
    customers_found,
    history_auto_map,
    history_mapping_errors,
    parse_time,
)
from cim.ingest.importer import BatchImporter, ImportCounts
from cim.ingest.mapping import fold_header
from cim.ingest.models import ImportJob
from cim.ingest.readers import RowProblem

# target → (label, headers that mean it, compared folded like customer headers), with those of the exports of
# Taobao/Tmall, JD and Pinduoduo.
ORDER_TARGETS: dict[str, tuple] = {
    "order_number": (gettext_lazy("Order number"), "订单号 订单编号 单号 订单id ordernumber orderno orderid order"),
    **CUSTOMER_KEY_TARGETS,
    "ordered_at": (
        gettext_lazy("Ordered at"),
        "下单时间 订单时间 下单日期 订单日期 订单创建时间 创建时间 成交时间 订单成交时间 购买时间 购买日期 付款时间 "
        "支付时间 订单付款时间 日期 时间 orderedat orderdate ordertime date createdat paidat purchasedate",
    ),
    "status": (gettext_lazy("Status"), "订单状态 状态 交易状态 status orderstatus"),
    "channel": (gettext_lazy("Sales channel"), "渠道 销售渠道 平台 来源 channel saleschannel platform source"),
    "store": (gettext_lazy("Store"), "门店 店铺 店铺名称 门店名称 store shop"),
    "currency": (gettext_lazy("Currency"), "币种 货币 currency"),
    "sku": (gettext_lazy("SKU"), "sku 商品编码 商品编号 商家编码 货号 商品id 产品编码 productid itemid"),
    "product_name": (
        gettext_lazy("Product name"),
        "商品 商品名称 商品标题 宝贝标题 宝贝名称 产品 产品名称 品名 product productname item itemname",
    ),
    "quantity": (gettext_lazy("Quantity"), "数量 购买数量 商品数量 订购数量 宝贝总数量 件数 quantity qty"),
    "unit_price": (gettext_lazy("Unit price"), "单价 商品单价 价格 售价 京东价 unitprice price"),
    "line_discount": (gettext_lazy("Line discount"), "优惠 折扣 商品优惠 linediscount discount"),
    "order_discount": (gettext_lazy("Order discount"), "订单优惠 整单优惠 店铺优惠 店铺优惠折扣 orderdiscount"),
    "total": (
        gettext_lazy("Order total (one row per order)"),
        "订单金额 实付金额 实付 实付款 买家实际支付金额 用户实付金额 应付金额 总金额 金额 合计 ordertotal total amount",
    ),
    "refunded": (gettext_lazy("Refunded amount"), "退款金额 已退款 refunded refundamount"),
}
STATUS_WORDS = {
    Order.Status.PAID: "paid 已支付 已付款 支付成功 交易成功 已完成 完成 已发货 已签收 completed complete success",
    Order.Status.PENDING: "pending 待付款 未付款 待支付 unpaid",
    Order.Status.CANCELLED: "cancelled canceled 已取消 取消 交易关闭 已关闭 closed void",
    Order.Status.REFUNDED: "refunded 已退款 退款 全额退款 退款成功",
    Order.Status.PARTIALLY_REFUNDED: "partiallyrefunded 部分退款",
}
STATUS_OF = {fold_header(word): status.value for status, words in STATUS_WORDS.items() for word in words.split()}
# Platforms write phrases (卖家已发货，等待买家确认; 买家已付款，等待卖家发货; 退款成功): judged by the first of these
# kinds whose words they hold, the most telling first, so that 等待买家付款 is pending and 退款成功 refunded.
STATUS_HINTS = [
    (Order.Status.PARTIALLY_REFUNDED, "部分退款 partialrefund partiallyrefunded"),
    (Order.Status.REFUNDED, "已退款 退款成功 退款完成 全额退款 refunded"),
    (Order.Status.CANCELLED, "取消 关闭 作废 交易失败 cancel closed void"),
    (Order.Status.PENDING, "待付款 未付款 待支付 未支付 等待付款 等待买家付款 unpaid awaitingpayment pending"),
    (
        Order.Status.PAID,
        "成功 完成 已付款 已支付 发货 签收 收货 出库 配送 paid complete success shipped delivered fulfilled",
    ),
]
_MONEY_NOISE = re.compile(r"[,，¥￥$\s元]")
CENT = Decimal("0.01")
# The amount columns hold 14 digits (12 before the point): a line or order total stays below it with room for
# the sum of many lines. A quantity holds 9 digits before the point.
MAX_AMOUNT = Decimal("9999999999.99")
MAX_QUANTITY = Decimal("999999")
ORDER_FIELDS = [
    "customer",
    "number",
    "system",
    "status",
    "channel",
    "store",
    "currency",
    "ordered_at",
    "lines_amount",
    "discount_amount",
    "total_amount",
    "refunded_amount",
    "net_amount",
    "cancelled_at",
    "created_by",
    "import_job",
    "created_at",
    "updated_at",
]
LINE_FIELDS = ["order", "product", "sku", "name", "quantity", "unit_price", "discount", "amount"]


def order_auto_map(columns: list[str]) -> dict[str, str]:
    return history_auto_map(ORDER_TARGETS, columns)


def order_target_choices() -> list[tuple[str, str]]:
    return [(target, str(label)) for target, (label, _h) in ORDER_TARGETS.items()]


def order_mapping_errors(mapping: dict[str, str], columns: list[str]) -> list[str]:
    problems = history_mapping_errors(ORDER_TARGETS, mapping, columns)
    targets = set(mapping.values())
    if "order_number" not in targets:
        problems.append(_("Map a column to the order number."))
    if not targets & {"total", "unit_price"}:
        problems.append(_("Map a column to the unit price (one row per line) or to the order total."))
    return problems


@lru_cache(maxsize=1024)
def order_status(text: str) -> str:
    """The status an export's word or phrase means ("" when none): 交易成功, 已取消, Completed, 等待买家付款 …"""
    folded = fold_header(text)
    if folded in STATUS_OF:
        return STATUS_OF[folded]
    return next(
        (status.value for status, words in STATUS_HINTS if any(fold_header(w) in folded for w in words.split())), ""
    )


def parse_money(text: str, maximum: Decimal = MAX_AMOUNT) -> Decimal | None:
    try:
        value = Decimal(_MONEY_NOISE.sub("", text))
    except InvalidOperation:
        return None
    if not value.is_finite() or not 0 <= value <= maximum:
        return None
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# One row after parsing, a plain tuple because it crosses between processes (pickling a dataclass costs 4× more):
# (row number, errors [(column, message)], order number,
#  customer keys (customer number, external id, phone match key, email match key),
#  order (status, channel, store, currency, ordered_at adapted, order discount, refunded),
#  line (sku, name, quantity, unit_price, discount, amount)), amounts as text.
PreparedLine = tuple[int, list, str, tuple, tuple, tuple]


def _rejected(row: int, errors: list) -> PreparedLine:
    return row, errors, "", (), (), ()


class LinePreparer:
    """Parses rows without touching the database, so it can run in another process."""

    def __init__(self, job: ImportJob):
        self.column = {target: column for column, target in job.mapping.items() if target}
        self.adapt_time = value_adapter(Order._meta.get_field("ordered_at"))
        # The lines of an order share its time: parsed and adapted once.
        self.ordered_at = lru_cache(maxsize=100_000)(self._ordered_at)

    def __call__(self, batch: list[tuple[int, dict | RowProblem]]) -> list[PreparedLine]:
        return [self.prepare(number, record) for number, record in batch]

    def _ordered_at(self, text: str):
        moment = parse_time(text)
        return None if moment is None else self.adapt_time(moment)

    def prepare(self, number: int, record: dict | RowProblem) -> PreparedLine:
        if isinstance(record, RowProblem):
            return _rejected(number, [("", record.message)])
        text = {target: str(record.get(column) or "").strip() for target, column in self.column.items()}
        errors = []
        order_number = text.get("order_number", "")
        if not order_number:
            errors.append((self.column["order_number"], _("The order number is empty.")))
        elif len(order_number) > 64:
            errors.append((self.column["order_number"], _("The order number is longer than 64 characters.")))
        customer = customer_keys(text, self.column, errors)
        ordered_at = None
        if text.get("ordered_at"):
            ordered_at = self.ordered_at(text["ordered_at"])
            if ordered_at is None:
                errors.append((self.column["ordered_at"], _("Enter a time like 2024-05-01 13:05 or 2024/5/1.")))
        else:
            errors.append((self.column.get("ordered_at", ""), _("The order time is empty.")))
        status = Order.Status.PAID.value
        if text.get("status"):
            status = order_status(text["status"])
            if not status:
                errors.append((self.column["status"], _("Unknown order status.")))
        amounts = {}
        if text.get("quantity"):
            amounts["quantity"] = parse_money(text["quantity"], MAX_QUANTITY)
            if amounts["quantity"] is None:
                errors.append((self.column["quantity"], _("Enter a quantity from 0 to 999,999.")))
        for target in ("unit_price", "line_discount", "order_discount", "total", "refunded"):
            if text.get(target):
                amounts[target] = parse_money(text[target])
                if amounts[target] is None:
                    errors.append((self.column[target], _("Enter an amount from 0 to 9,999,999,999.99, like 12.50.")))
        currency = (text.get("currency") or "CNY").upper()
        if len(currency) != 3 or not currency.isalpha():
            errors.append((self.column.get("currency", ""), _("Enter a three-letter currency code, like CNY.")))
        if errors:
            return _rejected(number, errors)
        total = amounts.get("total")
        quantity = amounts.get("quantity") or Decimal(1)
        unit_price = amounts.get("unit_price")
        if unit_price is None:
            if total is None:
                return _rejected(number, [("", _("Enter the unit price or the order total."))])
            unit_price, quantity = total + amounts.get("order_discount", 0), Decimal(1)
        discount = amounts.get("line_discount") or Decimal(0)
        amount = (quantity * unit_price - discount).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount < 0:
            return _rejected(number, [(self.column["line_discount"], _("The discount is larger than the line."))])
        if amount > MAX_AMOUNT:
            return _rejected(number, [("", _("The line's total is larger than 9,999,999,999.99."))])
        return (
            number,
            [],
            order_number,
            customer,
            (
                status,
                text.get("channel", "")[:50],
                text.get("store", "")[:100],
                currency,
                ordered_at,
                str(amounts.get("order_discount") or 0),
                str(amounts.get("refunded") or 0),
            ),
            (
                text.get("sku", "")[:64],
                text.get("product_name", "")[:200],
                str(quantity),
                str(unit_price),
                str(discount),
                str(amount),
            ),
        )


@dataclass
class _NewOrder:
    customer_id: int
    header: tuple
    lines: list = field(default_factory=list)


class OrderImporter(BatchImporter):
    """The state one run of an order import carries from batch to batch."""

    preparer = LinePreparer

    def __init__(self, job: ImportJob, actor, dry_run: bool):
        super().__init__(job, actor, dry_run)
        # The catalogue is small beside the orders: each line finds its product by SKU here, not by a query.
        self.products = dict(Product.objects.values_list("sku", "pk"))

    def _write(self, batch: list[PreparedLine], errors: list, counts: ImportCounts) -> None:
        good = []
        for line in batch:
            if line[1]:
                self._reject(errors, counts, line[0], line[1])
            else:
                good.append(line)
        found = customers_found([line[3] for line in good], self.system)
        numbers = sorted({line[2] for line in good})
        existing = {number: (order_id, job_id) for number, order_id, job_id in _orders_by_number(self.system, numbers)}
        new: dict[str, _NewOrder] = {}
        continued: dict[int, list] = {}
        for row, _errors, number, keys, header, line in good:
            customer_id = customer_of(found, keys)
            if customer_id is None:
                self._reject(errors, counts, row, [("", _("No customer matches this row; none was created."))])
                continue
            if number in existing:
                order_id, job_id = existing[number]
                if job_id == self.job.pk:
                    continued.setdefault(order_id, []).append(line)
                else:
                    counts.unchanged += 1
                continue
            order = new.get(number)
            if order is None:
                order = new[number] = _NewOrder(customer_id, header)
            elif order.customer_id != customer_id:
                self._reject(errors, counts, row, [("", _("This order's earlier rows are another customer's."))])
                continue
            order.lines.append(line)
        self._insert(new, counts)
        if continued:
            self._continue(continued, counts)

    def _insert(self, new: dict[str, "_NewOrder"], counts: ImportCounts) -> None:
        if not new:
            return
        now = value_adapter(Order._meta.get_field("created_at"))(timezone.now())
        actor_id = self.actor and self.actor.pk
        rows = []
        for number, order in new.items():
            status, channel, store, currency, at, discount, refunded = order.header
            lines_amount = sum(map(Decimal, (line[5] for line in order.lines)))
            discount, refunded = Decimal(discount), Decimal(refunded)
            total = max(lines_amount - discount, Decimal(0))
            if status == Order.Status.REFUNDED and not refunded:
                refunded = total
            refunded = min(refunded, total)
            net, status = _settled(status, total, refunded)
            rows.append(
                (
                    order.customer_id, number, self.system, status, channel, store, currency, at,
                    str(lines_amount), str(discount), str(total), str(refunded), str(net),
                    at if status == Order.Status.CANCELLED else None, actor_id, self.job.pk, now, now,
                )
            )  # fmt: skip
        insert_rows(Order, ORDER_FIELDS, rows)
        ids = dict(column_lookup(Order, "number", "id", list(new), system=self.system))
        insert_rows(OrderLine, LINE_FIELDS, self._lines((ids[number], order.lines) for number, order in new.items()))
        refunds = [(ids[row[1]], row[11], "", row[7]) for row in rows if Decimal(row[11])]
        insert_rows(Refund, ["order", "amount", "reason", "refunded_at"], refunds)
        # One entry per batch, not per order: each order names its import job, which this entry names.
        audit_record(actor=self.actor, action="order.import", target=self.job, note=f"{len(rows)} orders")
        counts.created += len(rows)
        counts.lines += sum(len(order.lines) for order in new.values())

    def _lines(self, orders) -> Iterator[tuple]:
        products = self.products
        for order_id, lines in orders:
            for line in lines:
                yield (order_id, products.get(line[0]), *line)

    def _continue(self, continued: dict[int, list], counts: ImportCounts) -> None:
        """Lines of orders this job created in an earlier batch: add them and total the orders again."""
        insert_rows(OrderLine, LINE_FIELDS, self._lines(continued.items()))
        sums = dict(
            OrderLine.objects.filter(order_id__in=list(continued))
            .values("order_id")
            .annotate(total=Sum("amount"))
            .values_list("order_id", "total")
        )
        for order in Order.objects.filter(pk__in=list(continued)):
            order.lines_amount = sums[order.pk]
            order.total_amount = max(order.lines_amount - order.discount_amount, Decimal(0))
            order.refunded_amount = min(order.refunded_amount, order.total_amount)
            order.net_amount, order.status = _settled(order.status, order.total_amount, order.refunded_amount)
            order.save(update_fields=["lines_amount", "total_amount", "refunded_amount", "net_amount", "status"])
        counts.updated += len(continued)
        counts.lines += sum(map(len, continued.values()))


def _settled(status: str, total: Decimal, refunded: Decimal) -> tuple[Decimal, str]:
    """(net amount, status) by the same rule as `cim.activities.orders.settle`."""
    if status in (Order.Status.CANCELLED, Order.Status.PENDING):
        return Decimal(0), status
    if refunded <= 0:
        return total, Order.Status.PAID.value
    if refunded < total:
        return total - refunded, Order.Status.PARTIALLY_REFUNDED.value
    return Decimal(0), Order.Status.REFUNDED.value


def _orders_by_number(system: str, numbers: list[str]) -> list[tuple]:
    if not numbers:
        return []
    q = connection.ops.quote_name
    table = q(Order._meta.db_table)
    sql = (
        f"SELECT number, id, import_job_id FROM {table} "
        f"WHERE system = %s AND number IN ({', '.join(['%s'] * len(numbers))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [system, *numbers])
        return cursor.fetchall()
