"""Customers made through the real service, so tests see normalised, indexed, audited data."""

from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_create


def make_customer(actor, **fields):
    fields.setdefault("display_name", "张三")
    return customer_create(data=CustomerInput(**fields), actor=actor)
