"""Customer acquisition cost (CAC) and historical customer lifetime value per acquisition channel.

Definitions, the common ones of marketing finance:

* A customer is **acquired** in the month (installation time zone) of their first counted order (paid or partly
  refunded, as everywhere in analytics), through their `source_channel` ("unknown" when empty). Leads who never
  bought are not acquired customers, and customers imported long after their first purchase count in the month
  they first bought, not the month they were imported.
* **CAC** of a channel and period = the acquisition costs entered for that channel in the period's months ÷ the
  customers acquired through it in the period. No costs entered (or costs in more than one currency), or no
  customer acquired: no CAC, never 0.
* **Historical CLV** = the net revenue (after refunds) of every counted order to date of the customers acquired
  in the period ÷ those customers. It is revenue, free of gross margin, unless a margin (0–1) is given, which
  multiplies it; the **CLV:CAC ratio** compares the two (3 or more is the usual rule of thumb).

Each customer's order totals come from `analytics/data.py` and are grouped per channel and month in DuckDB; those
cohorts are cached for a few minutes, the costs (a few rows a month) are read fresh, so an entered cost shows at once.
"""

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pyarrow as pa
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.analytics.data import CHUNK, customer_totals
from cim.analytics.models import AcquisitionCost
from cim.audit.services import audit_record
from cim.customers.choices import SourceChannel
from cim.customers.models import Customer

UNKNOWN = "unknown"
CACHE_KEY = "analytics:acquisition:cohorts"
CACHE_SECONDS = 600
MAX_AMOUNT = Decimal("999999999999.99")  # the column's 14 digits, 2 after the point
NOTE_LENGTH = AcquisitionCost._meta.get_field("note").max_length


# --- Months -------------------------------------------------------------------------------------------------


def month_of(value: date | str) -> date:
    """The first day of the month `value` names (a date, `YYYY-MM` or `YYYY-MM-DD`); ValueError otherwise."""
    if isinstance(value, str):
        text = value.strip()
        value = date.fromisoformat(text) if len(text) == 10 else datetime.strptime(text, "%Y-%m").date()
    if not isinstance(value, date):
        raise ValueError(value)
    return value.replace(day=1)


def months_back(month: date, n: int) -> date:
    """The first day of the month `n` months before `month`."""
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def period_parse(start: str | None, end: str | None) -> tuple[date, date]:
    """The period of the `from` and `to` months (`YYYY-MM`); without `to`, up to this month; without `from`, the
    twelve months up to `to`. ValidationError per field."""
    errors, months = {}, {}
    for name, text in (("from", start), ("to", end)):
        try:
            months[name] = month_of(text) if text else None
        except ValueError:
            errors[name] = [_("Enter a month as YYYY-MM.")]
    if errors:
        raise ValidationError(errors)
    last = months["to"] or timezone.localdate().replace(day=1)
    first = months["from"] or months_back(last, 11)
    if first > last:
        raise ValidationError({"to": [_("The period ends before it starts.")]})
    return first, last


# --- Costs: the services ------------------------------------------------------------------------------------


def _clean_cost(channel, month, amount, currency, note) -> tuple[str, date, Decimal, str, str]:
    """The cost's values normalised (month to its first day, currency upper-cased); ValidationError per field."""
    errors: dict[str, list[str]] = {}
    channel = (channel or "").strip()
    if channel not in SourceChannel.values:
        errors["channel"] = [_("Select one of: %(choices)s.") % {"choices": ", ".join(SourceChannel.values)}]
    try:
        month = month_of(month)
    except (ValueError, TypeError):
        errors["month"] = [_("Enter a month as YYYY-MM.")]
    try:
        amount = Decimal(str(amount).strip().replace(",", "")) if amount not in (None, "") else None
        if amount is None or not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        errors["amount"] = [_("Enter an amount, like 1200.50.")]
    else:
        if amount < 0:
            errors["amount"] = [_("The amount cannot be negative.")]
        elif amount > MAX_AMOUNT:
            errors["amount"] = [_("The amount is too large.")]
        elif amount != amount.quantize(Decimal("0.01")):
            errors["amount"] = [_("Enter at most two decimal places.")]
    currency = (currency or "CNY").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        errors["currency"] = [_("Enter a three-letter currency code, like CNY.")]
    note = (note or "").strip()
    if len(note) > NOTE_LENGTH:
        errors["note"] = [_("Enter at most %(n)s characters.") % {"n": NOTE_LENGTH}]
    if errors:
        raise ValidationError(errors)
    return channel, month, amount.quantize(Decimal("0.01")), currency, note


def acquisition_cost_set(
    *, channel: str, month: date | str, amount: Decimal | str, currency: str = "CNY", note: str = "", actor
) -> AcquisitionCost:
    """Enter what acquiring customers through `channel` cost in `month` (any day of it), or change it."""
    channel, month, amount, currency, note = _clean_cost(channel, month, amount, currency, note)
    values = {"amount": amount, "currency": currency, "note": note}
    with transaction.atomic():
        cost = AcquisitionCost.objects.select_for_update().filter(channel=channel, month=month).first()
        if cost is None:
            author = actor if actor is not None and actor.is_authenticated else None
            cost = AcquisitionCost.objects.create(channel=channel, month=month, created_by=author, **values)
            audit_record(
                actor=actor, action="acquisition_cost.create", target=cost, fields=["channel", "month", *values]
            )
            return cost
        changed = [name for name, value in values.items() if getattr(cost, name) != value]
        if not changed:
            return cost
        for name in changed:
            setattr(cost, name, values[name])
        cost.save(update_fields=[*changed, "updated_at"])
        audit_record(actor=actor, action="acquisition_cost.update", target=cost, fields=changed)
    return cost


def acquisition_cost_delete(*, channel: str, month: date | str, actor) -> bool:
    """Remove the cost of `channel` in `month`; False when there was none."""
    try:
        month = month_of(month)
    except (ValueError, TypeError):
        raise ValidationError({"month": [_("Enter a month as YYYY-MM.")]}) from None
    with transaction.atomic():
        cost = AcquisitionCost.objects.select_for_update().filter(channel=channel, month=month).first()
        if cost is None:
            return False
        audit_record(actor=actor, action="acquisition_cost.delete", target=cost, fields=["channel", "month"])
        cost.delete()
    return True


@dataclass
class RowError:
    row: int  # the line in the file, the header being line 1
    field: str
    message: str


class CostFileError(Exception):
    """A costs file with errors: nothing was saved."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


def acquisition_costs_import(*, text: str, actor) -> int:
    """Enter every cost of a CSV file with the header `channel,month,amount[,currency][,note]`: all of them, or
    none when any row has an error (CostFileError lists each, by line and column). Returns how many rows."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in ("channel", "month", "amount") if name not in header]
    if missing:
        raise CostFileError([RowError(1, name, _("This column is required.")) for name in missing])
    reader.fieldnames = header
    rows, errors, seen = [], [], {}
    for line, row in enumerate(reader, start=2):
        try:
            values = _clean_cost(row["channel"], row["month"], row["amount"], row.get("currency"), row.get("note"))
        except ValidationError as error:
            errors += [RowError(line, name, " ".join(texts)) for name, texts in error.message_dict.items()]
            continue
        if (key := values[:2]) in seen:
            errors.append(
                RowError(line, "month", _("The same channel and month are on line %(n)s.") % {"n": seen[key]})
            )
        seen[key] = line
        rows.append(values)
    if errors:
        raise CostFileError(errors)
    with transaction.atomic():
        for channel, month, amount, currency, note in rows:
            acquisition_cost_set(channel=channel, month=month, amount=amount, currency=currency, note=note, actor=actor)
    return len(rows)


def acquisition_cost_list(*, start: date | None = None, end: date | None = None):
    """The costs entered, newest month first, within the months `start`…`end` when given."""
    costs = AcquisitionCost.objects.select_related("created_by")
    if start is not None:
        costs = costs.filter(month__gte=start)
    if end is not None:
        costs = costs.filter(month__lte=end)
    return costs


# --- Figures ------------------------------------------------------------------------------------------------


def _channel_batches():
    """(customer id, channel) of the customers with a channel, as Arrow, a chunk at a time."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, source_channel FROM {table} WHERE source_channel <> ''")
        while rows := cursor.fetchmany(CHUNK):
            ids, channels = zip(*rows, strict=True)
            yield pa.record_batch(
                [pa.array(ids, pa.int64()), pa.array(channels, pa.string())], ["customer_id", "channel"]
            )


def acquisition_cohorts() -> list[tuple[str, date, int, int, float]]:
    """(channel, month acquired, customers, their counted orders to date, their net revenue to date), every month;
    cached a few minutes."""
    found = cache.get(CACHE_KEY)
    if found is not None:
        return found
    con = customer_totals(until=timezone.now())
    schema = pa.schema([("customer_id", pa.int64()), ("channel", pa.string())])
    con.register("channels", pa.Table.from_batches(list(_channel_batches()), schema=schema))
    found = con.execute(
        """
        SELECT coalesce(c.channel, ?) AS channel, CAST(date_trunc('month', t.first_at) AS DATE) AS month,
               count(*), sum(t.orders), sum(t.spent)
        FROM totals t LEFT JOIN channels c USING (customer_id)
        GROUP BY ALL ORDER BY month, channel
        """,
        [UNKNOWN],
    ).fetchall()
    con.close()
    cache.set(CACHE_KEY, found, CACHE_SECONDS)
    return found


@dataclass
class ChannelFigures:
    channel: str  # a SourceChannel value, "unknown", or "all" for the total
    label: str
    customers: int = 0  # acquired in the period
    orders: int = 0  # theirs, to date
    revenue: float = 0.0  # theirs, net of refunds, to date
    cost: float | None = None  # None: none entered, or in more than one currency
    currencies: list[str] = field(default_factory=list)  # of the costs entered
    cac: float | None = None
    clv: float | None = None
    orders_per_customer: float | None = None
    ratio: float | None = None  # CLV ÷ CAC

    def finish(self, margin: float | None) -> "ChannelFigures":
        # Amounts in different currencies cannot be added up.
        self.cost = round(self.cost, 2) if self.cost is not None and len(self.currencies) == 1 else None
        if self.customers:
            self.clv = round(self.revenue / self.customers * (margin if margin is not None else 1), 2)
            self.orders_per_customer = round(self.orders / self.customers, 2)
            if self.cost is not None:
                self.cac = round(self.cost / self.customers, 2)
        if self.cac:
            self.ratio = round(self.clv / self.cac, 2)
        self.revenue = round(self.revenue, 2)
        return self


@dataclass
class MonthFigures:
    month: date
    channel: str
    label: str
    customers: int
    cost: float | None
    cac: float | None


@dataclass
class AcquisitionReport:
    start: date  # first month, included
    end: date  # last month, included
    margin: float | None
    channels: list[ChannelFigures]  # channels with customers acquired or costs, in the choices' order
    total: ChannelFigures
    history: list[MonthFigures]  # per month and channel, for the CAC trend


def _label(channel: str) -> str:
    return str(SourceChannel(channel).label) if channel in SourceChannel.values else _("Unknown")


def margin_check(margin: float | None) -> None:
    """A gross margin is a share: more than 0, at most 1."""
    if margin is not None and not 0 < margin <= 1:
        raise ValidationError({"margin": [_("Enter a gross margin between 0 and 1, like 0.35.")]})


def acquisition_report(*, start: date, end: date, margin: float | None = None) -> AcquisitionReport:
    """CAC, historical CLV, orders per customer and CLV:CAC per channel, for the customers acquired in the
    months `start`…`end` (both first days of a month, included); and the month-by-month history."""
    margin_check(margin)
    figures: dict[str, ChannelFigures] = {}
    total = ChannelFigures("all", _("All channels"))
    monthly: dict[tuple[date, str], list] = defaultdict(lambda: [0, None])  # (month, channel) → [customers, cost]

    def row(channel: str) -> ChannelFigures:
        return figures.setdefault(channel, ChannelFigures(channel, _label(channel)))

    for channel, month, customers, orders, revenue in acquisition_cohorts():
        if start <= month <= end:
            for target in (row(channel), total):
                target.customers += customers
                target.orders += orders
                target.revenue += revenue
            monthly[(month, channel)][0] = customers
    # One row per channel and month (a unique constraint): a few hundred at most.
    costs = AcquisitionCost.objects.filter(month__gte=start, month__lte=end).order_by()
    for channel, month, currency, amount in costs.values_list("channel", "month", "currency", "amount"):
        for target in (row(channel), total):
            target.cost = (target.cost or 0.0) + float(amount)
            if currency not in target.currencies:
                target.currencies.append(currency)
        monthly[(month, channel)][1] = float(amount)
    # The choices' order; values no longer among the choices (kept on old customers) last.
    order = defaultdict(lambda: len(SourceChannel.values) + 1, {v: i for i, v in enumerate(SourceChannel.values)})
    order[UNKNOWN] = len(SourceChannel.values)
    channels = sorted(figures.values(), key=lambda f: order[f.channel])
    for figure in [*channels, total]:
        figure.finish(margin)
    history = [
        MonthFigures(
            month=month,
            channel=channel,
            label=_label(channel),
            customers=customers,
            cost=cost,
            cac=round(cost / customers, 2) if cost is not None and customers else None,
        )
        for (month, channel), (customers, cost) in sorted(monthly.items(), key=lambda i: (i[0][0], order[i[0][1]]))
    ]
    return AcquisitionReport(start=start, end=end, margin=margin, channels=channels, total=total, history=history)
