"""Set-based reads and writes of the bulk paths, on both databases."""

from cim.core.bulk import LOOKUP_CHUNK, column_lookup, insert_rows
from cim.customers.models import ExternalId
from cim.customers.tests.factories import make_customer


def test_column_lookup_takes_more_keys_than_one_sqlite_statement_holds(admin_user):
    customer = make_customer(admin_user)
    insert_rows(
        ExternalId,
        ["customer", "system", "value", "created_at"],
        [(customer.pk, system, value, "2026-12-05 00:00:00") for system, value in (("crm", "A-1"), ("erp", "A-2"))],
    )
    # More than SQLite takes in one statement: 32,766 parameters by default, 250,000 in Debian's build.
    keys = [f"missing-{i}" for i in range(30 * LOOKUP_CHUNK)] + ["A-1", "A-2"]
    assert column_lookup(ExternalId, "value", "customer", keys, system="crm") == [("A-1", customer.pk)]
    assert sorted(column_lookup(ExternalId, "value", "customer", keys)) == [("A-1", customer.pk), ("A-2", customer.pk)]
