"""Demo data: realistic, valid by the same rules as real input, and findable through search."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from pypinyin import lazy_pinyin

from cim.audit.models import AuditEvent
from cim.customers import demo
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, Phone
from cim.customers.selectors import customer_list
from cim.quality.normalize import normalize_email, normalize_phone, normalize_uscc

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    out = StringIO()
    call_command("demo", "--customers", "200", "--seed", "7", "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_demo_json_last_line(loaded):
    assert loaded["customers"] == 200 and loaded["seconds"] >= 0
    assert Customer.objects.count() == 200
    assert AuditEvent.objects.filter(action="customer.demo_load").exists()


def test_demo_values_pass_the_input_rules(loaded):
    for phone in Phone.objects.all():
        assert normalize_phone(phone.raw) == phone.number
    for customer in Customer.objects.prefetch_related("emails"):
        assert customer.display_name and customer.owner_id == customer.owner_id
        for email in customer.emails.all():
            assert normalize_email(email.address) == email.address
        if customer.uscc:
            assert customer.kind == "organization" and normalize_uscc(customer.uscc) == customer.uscc
    assert Customer.objects.filter(kind="organization").exists()
    assert Customer.objects.filter(display_name__regex=r"^[A-Za-z]").exists()


def test_every_demo_customer_is_found_by_initials_and_phone_last_four(admin_user, loaded):
    # Archived customers are left out of lists and search by design.
    for customer in Customer.objects.exclude(status="archived").prefetch_related("phones"):
        name = customer.display_name
        # Initials as typed character by character (重庆 → zq); Latin names are found by their words.
        initials = "".join(lazy_pinyin(ch)[0][0] for ch in name if ch.isalpha()) if not name.isascii() else ""
        for query in (initials or name.split()[-1].lower(), customer.phones.all()[0].number[-4:]):
            found = customer_list(user=admin_user, filters=CustomerFilter(q=query))
            assert found.filter(pk=customer.pk).exists(), (customer.display_name, query)


def test_same_seed_same_names():
    names = []
    for _ in range(2):
        call_command("demo", "--customers", "20", "--seed", "3", stdout=StringIO(), stderr=StringIO())
        names.append(list(Customer.objects.order_by("-id").values_list("display_name", flat=True)[:20]))
    assert names[0] == names[1]


def test_rows_find_their_customers_when_ids_are_not_consecutive(admin_user, monkeypatch):
    monkeypatch.setattr(demo, "_consecutive", lambda pks: False)
    call_command("demo", "--customers", "30", stdout=StringIO(), stderr=StringIO())
    for customer in Customer.objects.exclude(status="archived").prefetch_related("phones"):
        phone = customer.phones.all()[0].number
        assert customer_list(user=admin_user, filters=CustomerFilter(q=phone)).filter(pk=customer.pk).exists()
