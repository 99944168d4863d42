import datetime
import hashlib

import pytest
from django.utils import timezone, translation

from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_update
from cim.customers.tests.factories import make_customer
from cim.privacy.models import Consent, ConsentPurpose
from cim.privacy.selectors import consent_holds, consent_state
from cim.privacy.services import (
    ConsentRequired,
    RestrictedProcessing,
    consent_record,
    consent_required,
    restriction_lift,
    restriction_set,
)

pytestmark = pytest.mark.django_db


def _record(customer, purpose="marketing", granted=True, at=None, text="我同意接收营销信息"):
    consent = consent_record(
        customer=customer, purpose=purpose, text=text, text_version="v1", granted=granted, actor=None
    )
    if at is not None:
        Consent.objects.filter(pk=consent.pk).update(at=at)
    return consent


def test_the_ledger_keeps_the_hash_of_the_text_shown(admin_user):
    customer = make_customer(admin_user)
    consent = _record(customer)
    assert consent.text_sha256 == hashlib.sha256("我同意接收营销信息".encode()).hexdigest()


def test_separate_consent_purposes_exist():
    assert {"sensitive", "third_party", "cross_border"} <= set(ConsentPurpose.values)


def test_a_withdrawal_is_a_new_row_and_the_latest_row_wins(admin_user):
    a, b, c = (make_customer(admin_user, display_name=n) for n in ("甲", "乙", "丙"))
    now = timezone.now()
    _record(a, at=now - datetime.timedelta(days=2))
    _record(a, granted=False, at=now - datetime.timedelta(days=1))
    _record(b, granted=False, at=now - datetime.timedelta(days=3))
    _record(b, at=now - datetime.timedelta(days=1))
    _record(c, purpose="research")

    assert consent_holds([a.pk, b.pk, c.pk], "marketing") == {b.pk}
    assert consent_holds([a.pk, b.pk, c.pk], "research") == {c.pk}
    assert Consent.objects.filter(customer=a).count() == 2
    state = {s["purpose"]: s["row"] for s in consent_state(customer=a)}
    assert state["marketing"].granted is False and state["research"] is None


def test_consent_holds_works_over_many_ids_in_chunks(admin_user, monkeypatch):
    from cim.privacy import selectors

    monkeypatch.setattr(selectors, "CHUNK", 2)
    customers = [make_customer(admin_user, display_name=f"客户{i}") for i in range(5)]
    for customer in customers[::2]:
        _record(customer)
    assert consent_holds([c.pk for c in customers] + [999_999], "marketing") == {c.pk for c in customers[::2]}


def test_consent_required_names_how_many_are_missing_in_the_users_language(admin_user):
    a, b = make_customer(admin_user, display_name="甲"), make_customer(admin_user, display_name="乙")
    _record(a)
    assert consent_required(customer_ids=[a.pk], purpose="marketing") == {a.pk}
    with translation.override("en"), pytest.raises(ConsentRequired) as error:
        consent_required(customer_ids=[a.pk, b.pk], purpose="marketing")
    assert error.value.missing == {b.pk}
    assert "1 of 2 customers has not consented to “Marketing messages”" in error.value.messages[0]


def test_a_restricted_customer_cannot_be_edited_or_marketed_to(admin_user):
    customer = make_customer(admin_user)
    _record(customer)
    restriction_set(customer=customer, actor=admin_user)
    with pytest.raises(RestrictedProcessing):
        customer_update(customer=customer, data=CustomerInput(display_name="张三", alias="x"), actor=admin_user)
    with pytest.raises(ConsentRequired):
        consent_required(customer_ids=[customer.pk], purpose="marketing")
    restriction_lift(customer=customer, actor=admin_user)
    customer_update(customer=customer, data=CustomerInput(display_name="张三", alias="x"), actor=admin_user)
    customer.refresh_from_db()
    assert customer.alias == "x"
