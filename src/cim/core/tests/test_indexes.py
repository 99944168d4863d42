"""The tables that imports and the hourly refresh write by the million carry no index that another of their
indexes makes redundant: it would cost every insert and disk, and serve no query the other does not."""

import pytest
from django.db import connection

BULK_WRITTEN = [
    "customers_customer",
    "customers_phone",
    "customers_email",
    "customers_customertag",
    "customers_externalid",
    "activities_order",
    "activities_orderline",
    "activities_anonymouslink",
    "segments_segmentmember",
    "quality_duplicatecandidate",
]


def redundant_indexes(table: str) -> list[tuple[str, str]]:
    """(index, the index or unique constraint that leads with the same columns) pairs of `table`'s b-trees."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    btrees = {
        name: info
        for name, info in constraints.items()
        if (info["index"] or info["unique"])
        and info.get("type") in (None, "idx")
        # PostgreSQL's varchar_pattern_ops twin of a text index serves LIKE, which the plain one cannot.
        and not name.endswith("_like")
    }
    return [
        (name, other)
        for name, info in btrees.items()
        if not info["unique"]
        for other, longer in btrees.items()
        if other != name and longer["columns"][: len(info["columns"])] == info["columns"]
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("table", BULK_WRITTEN)
def test_no_index_of_a_bulk_written_table_is_led_by_another(table):
    assert redundant_indexes(table) == []


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="Django adds pattern-ops twins on PostgreSQL only")
def test_only_the_customer_number_keeps_a_pattern_index_for_like():
    """Keys matched exactly (name keys, keyed hashes) keep one plain index; only the number is searched by prefix."""
    with connection.cursor() as cursor:
        like_columns = {
            (table, *info["columns"])
            for table in BULK_WRITTEN
            for name, info in connection.introspection.get_constraints(cursor, table).items()
            if name.endswith("_like")
        }
    assert like_columns == {("customers_customer", "number")}
