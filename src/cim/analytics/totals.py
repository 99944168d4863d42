"""Each customer's order totals (orders, total spent, first and last order) kept in `CustomerScore`, summed again
only for the customers whose orders changed.

Triggers on the orders table mark a customer in `OrderTotalsDue` whenever one of their orders is inserted or
deleted, or changes customer, status, amount or time (migration analytics 0003). So an hourly refresh sums the
orders of the few customers marked since the last one and reads one row per customer, not every order. An order
dated in the future counts from its time on: its customer is marked again for that moment.
"""

import duckdb
import pyarrow as pa
from django.db import connection, transaction
from django.utils import timezone

from cim.activities.models import Order
from cim.analytics.data import COUNTED, TOTALS_SCHEMA, duckdb_with, query_table
from cim.analytics.models import CustomerScore, OrderTotalsDue
from cim.customers.models import Customer

DUE = "cim_order_totals_due_now"
# The score columns, with what they hold for a customer left without a counted order.
CLEARED = (
    ("recency_score", "NULL"),
    ("frequency_score", "NULL"),
    ("monetary_score", "NULL"),
    ("rfm_segment", "''"),
    ("value_segment", "''"),
)
# The totals with the scores last given for them, which the RFM refresh compares its new scores with.
STORED_SCHEMA = pa.schema(
    [
        *TOTALS_SCHEMA,
        ("recency_score", pa.int64()),
        ("frequency_score", pa.int64()),
        ("monetary_score", pa.int64()),
        ("rfm_segment", pa.string()),
        ("value_segment", pa.string()),
    ]
)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def order_totals_update(*, as_of=None) -> int:
    """Sum again the counted orders placed before `as_of` of every customer marked due by then, into their
    `CustomerScore` row; returns how many customers were summed."""
    as_of = connection.ops.adapt_datetimefield_value(as_of or timezone.now())
    due, scores, orders = _table(OrderTotalsDue), _table(CustomerScore), _table(Order)
    with transaction.atomic(), connection.cursor() as cursor:
        # Taken first, then unmarked: a customer marked meanwhile by another transaction keeps that mark.
        cursor.execute(f"CREATE TEMPORARY TABLE {DUE} (customer_id bigint PRIMARY KEY)")
        cursor.execute(f"INSERT INTO {DUE} SELECT customer_id FROM {due} WHERE due_at <= %s", [as_of])
        cursor.execute(
            f"DELETE FROM {due} WHERE due_at <= %s AND customer_id IN (SELECT customer_id FROM {DUE})", [as_of]
        )
        summed = cursor.rowcount
        # `WHERE true` lets SQLite's parser tell the upsert's ON CONFLICT from a join's ON.
        cursor.execute(
            f"INSERT INTO {scores} (customer_id, orders, total_spent, first_order_at, last_order_at, rfm_segment, "
            "value_segment, churn_reasons, refreshed_at) "
            "SELECT d.customer_id, count(o.id), coalesce(round(sum(o.net_amount), 2), 0), min(o.ordered_at), "
            f"max(o.ordered_at), '', '', '[]', %s FROM {DUE} d JOIN {_table(Customer)} c ON c.id = d.customer_id "
            f"LEFT JOIN {orders} o ON o.customer_id = c.id AND o.status IN (%s, %s) AND o.ordered_at < %s "
            # Grouped by the taken ids, so that the planner starts from them and not from every customer.
            "WHERE true GROUP BY d.customer_id "
            "ON CONFLICT (customer_id) DO UPDATE SET orders = excluded.orders, total_spent = excluded.total_spent, "
            "first_order_at = excluded.first_order_at, last_order_at = excluded.last_order_at, "
            # Scores of a customer with no counted order left mean nothing; the RFM refresh scores the rest.
            + ", ".join(
                f"{name} = CASE WHEN excluded.orders = 0 THEN {empty} ELSE {scores}.{name} END"
                for name, empty in CLEARED
            )
            + ", refreshed_at = excluded.refreshed_at",
            [as_of, *COUNTED, as_of],
        )
        # A customer with an order dated later is due again when that time comes.
        cursor.execute(
            f"INSERT INTO {due} (customer_id, due_at) SELECT d.customer_id, min(o.ordered_at) "
            f"FROM {DUE} d JOIN {orders} o ON o.customer_id = d.customer_id "
            "WHERE o.status IN (%s, %s) AND o.ordered_at >= %s GROUP BY d.customer_id "
            "ON CONFLICT (customer_id) DO NOTHING",
            [*COUNTED, as_of],
        )
        cursor.execute(f"DROP TABLE {DUE}")
    return summed


def stored_totals() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `totals(customer_id, orders, spent, first_at, last_at, recency_score, …)`: the
    stored totals and scores of the customers with a counted order (after `order_totals_update`)."""
    # As text on SQLite, its times are parsed by Arrow a column at a time, not by Django's converter one by one.
    first, last = (
        f"CAST({name} AS TEXT)" if connection.vendor == "sqlite" else name
        for name in ("first_order_at", "last_order_at")
    )
    sql = (
        f"SELECT customer_id, orders, total_spent, {first}, {last}, {', '.join(n for n, _e in CLEARED)} "
        f"FROM {_table(CustomerScore)} WHERE orders > 0"
    )
    return duckdb_with("totals", query_table(sql, [], STORED_SCHEMA, replica=False))
