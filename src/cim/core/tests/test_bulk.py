"""Set-based reads and writes of the bulk paths, on both databases."""

from cim.core.bulk import LOOKUP_CHUNK, column_lookup, insert_rows, update_rows
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


def test_update_rows_sets_the_named_fields_of_the_keyed_rows_only(admin_user):
    first, second, third = (make_customer(admin_user) for _ in range(3))
    insert_rows(
        ExternalId,
        ["customer", "system", "value", "created_at"],
        [(c.pk, "crm", f"A-{c.pk}", "2026-12-05 00:00:00") for c in (first, second, third)],
    )
    by_customer = dict(ExternalId.objects.values_list("customer_id", "pk"))
    update_rows(
        ExternalId,
        "id",
        ["system", "value"],
        iter([(by_customer[first.pk], "erp", "新-1"), (by_customer[third.pk], "erp", "E-3")]),
    )
    rows = dict(ExternalId.objects.values_list("customer_id", "system"))
    values = dict(ExternalId.objects.values_list("customer_id", "value"))
    assert rows == {first.pk: "erp", second.pk: "crm", third.pk: "erp"}
    assert values == {first.pk: "新-1", second.pk: f"A-{second.pk}", third.pk: "E-3"}
