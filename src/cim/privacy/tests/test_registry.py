import datetime

import pytest
from django.apps import apps

from cim.privacy.registry import NOT_PERSONAL, REGISTRY, field_info, is_minor, sensitive_fields


@pytest.mark.parametrize("label", sorted(NOT_PERSONAL))
def test_every_field_of_a_personal_data_model_is_classified(label):
    model = apps.get_model(label)
    names = {f.name for f in model._meta.get_fields() if f.concrete or f.many_to_many}
    registered = {f.field for f in REGISTRY if f.model == label}
    assert not registered & NOT_PERSONAL[label], "a field is both personal and not"
    assert names - registered - NOT_PERSONAL[label] == set(), "add the new field to the PI registry"
    assert registered | NOT_PERSONAL[label] <= names, "the registry names a field the model no longer has"


def test_contact_details_and_birthday_are_sensitive_and_names_are_not():
    assert {(f.model, f.field) for f in sensitive_fields()} >= {
        ("customers.phone", "number"),
        ("customers.email", "address"),
        ("customers.address", "street"),
        ("customers.customer", "birthday"),
    }
    assert not field_info("customers.customer", "display_name").sensitive
    assert field_info("customers.customer", "number") is None


def test_a_minor_is_under_fourteen_on_the_day():
    today = datetime.date(2026, 12, 3)
    assert is_minor(datetime.date(2012, 12, 4), today=today)
    assert not is_minor(datetime.date(2012, 12, 3), today=today)
    assert not is_minor(None, today=today)


def test_every_model_with_a_customer_key_is_in_the_customer_data_list():
    from django.db import models

    from cim.customers.models import Customer
    from cim.privacy.registry import CUSTOMER_DATA

    listed = {entry.model for entry in CUSTOMER_DATA}
    holders = {
        model._meta.label_lower
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.ForeignKey | models.OneToOneField) and field.related_model is Customer
    }
    assert holders - listed == set(), "add these models to CUSTOMER_DATA"
    anonymised = {entry.model for entry in CUSTOMER_DATA if entry.on_erase == "anonymise"}
    assert anonymised - set(NOT_PERSONAL) == set(), "classify the fields of every model erasure anonymises"
