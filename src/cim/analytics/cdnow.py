"""The CDNOW sample (Fader, Hardie & Lee 2005) that ships inside `lifetimes`, loaded as CIM customers and orders."""

from datetime import UTC, date, datetime
from pathlib import Path

import lifetimes

from cim.activities.models import Order
from cim.core.bulk import insert_rows, value_adapter
from cim.customers.models import Customer
from cim.customers.numbering import numbers_allocate

CDNOW = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)  # 39 weeks, the last day included
HOLDOUT_END = date(1998, 6, 30)


def load_cdnow() -> int:
    """Customers and their purchases (at noon UTC of the day); returns the number of orders."""
    rows = [line.split() for line in CDNOW.read_text().splitlines() if line.strip()]
    ids = sorted({int(row[1]) for row in rows})
    numbers = numbers_allocate(len(ids))
    Customer.objects.bulk_create(
        Customer(number=number, display_name=f"CDNOW {sample}", kind="person")
        for sample, number in zip(ids, numbers, strict=True)
    )
    customer_of = dict(
        zip(
            ids,
            Customer.objects.filter(number__in=numbers).order_by("number").values_list("pk", flat=True),
            strict=True,
        )
    )
    stamp = value_adapter(Order._meta.get_field("ordered_at"))
    now = stamp(datetime.now(UTC))
    orders = []
    for index, (_master, sample, day, _cds, amount) in enumerate(rows):
        at = stamp(datetime.strptime(day, "%Y%m%d").replace(hour=12, tzinfo=UTC))
        orders.append(
            (
                customer_of[int(sample)],
                f"CD{index}",
                "cdnow",
                "paid",
                "",
                "",
                "CNY",
                at,
                amount,
                0,
                amount,
                0,
                amount,
                now,
                now,
            )
        )
    fields = ["customer", "number", "system", "status", "channel", "store", "currency", "ordered_at",
              "lines_amount", "discount_amount", "total_amount", "refunded_amount", "net_amount", "created_at",
              "updated_at"]  # fmt: skip
    insert_rows(Order, fields, orders)
    return len(orders)
