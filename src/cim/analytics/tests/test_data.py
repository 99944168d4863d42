"""What analyses read: orders and any query's rows as Arrow tables, the same on SQLite and on PostgreSQL (where
they cross as the CSV of a COPY)."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from cim.activities.history_schemas import OrderInput
from cim.activities.orders import order_cancel, order_create
from cim.analytics.data import customer_totals, purchases, query_table
from cim.customers.tests.factories import make_customer

FIRST = datetime(2026, 3, 5, 6, 30, 0, 123456, tzinfo=UTC)
TEXTS = pa.schema([("n", pa.int64()), ("text", pa.string()), ("at", pa.timestamp("us", tz="UTC"))])


def test_purchases_and_totals_keep_times_to_the_microsecond_and_leave_out_cancelled_orders(admin_user):
    customer = make_customer(admin_user, display_name="张三")
    for offset, price in ((0, "19.90"), (1, "100.05"), (2, "5")):
        order = order_create(
            customer=customer,
            data=OrderInput(ordered_at=FIRST + timedelta(days=offset), lines=[{"name": "茶", "unit_price": price}]),
            actor=admin_user,
        )
    order_cancel(order=order, actor=admin_user)

    con = purchases()
    assert con.execute("SELECT customer_id, ordered_at, amount FROM purchases ORDER BY ordered_at").fetchall() == [
        (customer.pk, FIRST, 19.90),
        (customer.pk, FIRST + timedelta(days=1), 100.05),
    ]
    con = customer_totals(until=FIRST + timedelta(days=1))
    assert con.execute("SELECT * FROM totals").fetchall() == [(customer.pk, 1, 19.90, FIRST, FIRST)]


def test_a_query_keeps_null_apart_from_empty_text_and_quotes_commas_and_newlines(db):
    sql = (
        "SELECT * FROM (SELECT 1 AS n, 'a,\"b\"\n张三' AS text, NULL AS at "
        "UNION ALL SELECT 2, NULL, NULL UNION ALL SELECT 3, '', NULL) AS q ORDER BY n"
    )
    assert query_table(sql, [], TEXTS).to_pylist() == [
        {"n": 1, "text": 'a,"b"\n张三', "at": None},
        {"n": 2, "text": None, "at": None},
        {"n": 3, "text": "", "at": None},
    ]


def test_a_query_without_rows_gives_an_empty_table_of_its_schema(db):
    table = query_table("SELECT 1 AS n, 'x' AS text, NULL AS at WHERE 1 = 0", [], TEXTS)
    assert table.num_rows == 0 and table.schema == TEXTS
