"""Merging any number of customers, and undoing it: the records and everything hanging off them come back
exactly as they were."""

import pytest
from django.core.exceptions import ValidationError

from cim.activities.models import BehaviourEvent
from cim.customers.models import Address, Customer, CustomerTag, Email, ExternalId, Phone
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.privacy.models import Consent
from cim.privacy.services import consent_record
from cim.quality.merge import customer_merge, customer_unmerge, merge_plan
from cim.quality.models import DuplicateCandidate
from cim.search.models import SearchDocument

RELATED = (Phone, Email, Address, CustomerTag, ExternalId, BehaviourEvent, Consent, DuplicateCandidate)


def state() -> dict:
    """Every customer and every related row, field by field."""
    return {
        "customers": sorted(Customer.objects.values_list(), key=str),
        **{model.__name__: sorted(model.objects.values_list(), key=str) for model in RELATED},
        "documents": sorted(SearchDocument.objects.values_list("customer", "tokens")),
    }


@pytest.fixture
def trio(admin_user):
    survivor = make_customer(
        admin_user, display_name="张三", phones=[{"number": "13812345678"}], tags=["VIP"], value_tier="vip"
    )
    second = make_customer(
        admin_user,
        display_name="張三",
        birthday="1990-01-02",
        phones=[{"number": "13812345678"}, {"number": "13900001111"}],
        emails=[{"address": "zs@example.com"}],
        tags=["VIP", "老客户"],
        addresses=[{"street": "北京市朝阳区建国路1号"}],
        custom_fields={},
    )
    third = make_customer(admin_user, display_name="Zhang San", company="华为技术有限公司", notes="展会")
    ExternalId.objects.create(customer=second, system="shop", value="u-1")
    consent_record(
        customer=third, purpose="marketing", text="同意接收营销信息", text_version="v1", channel="website", actor=None
    )
    return survivor, second, third


def test_merge_keeps_the_survivors_values_and_fills_its_gaps_from_the_others(admin_user, trio):
    survivor, second, third = trio
    record = customer_merge(survivor=survivor, duplicates=[second, third], actor=admin_user)
    survivor.refresh_from_db()
    assert survivor.display_name == "张三" and survivor.value_tier == "vip"
    assert str(survivor.birthday) == "1990-01-02" and survivor.company == "华为技术有限公司"
    assert record.provenance["birthday"] == second.number and record.provenance["display_name"] == survivor.number
    assert sorted(p.number for p in survivor.phones.all()) == ["+8613812345678", "+8613900001111"]
    assert [p.number for p in survivor.phones.filter(is_primary=True)] == ["+8613812345678"]
    assert sorted(t.name for t in survivor.tags.all()) == ["VIP", "老客户"]
    assert ExternalId.objects.get(value="u-1").customer == survivor
    for merged in (second, third):
        merged.refresh_from_db()
        assert merged.status == "archived" and merged.merged_into == survivor


def test_a_persons_choice_wins_over_the_rules(admin_user, trio):
    survivor, second, third = trio
    plan = merge_plan(survivor=survivor, merged=[second, third], choices={"display_name": third.pk})
    assert plan.values["display_name"] == "Zhang San" and plan.provenance["display_name"] == third.number


def test_unmerge_gives_back_every_record_and_relation_exactly(admin_user, trio):
    survivor, second, third = trio
    before = state()
    record = customer_merge(survivor=survivor, duplicates=[second, third], actor=admin_user)
    assert state() != before
    customer_unmerge(record=record, actor=admin_user)
    assert state() == before


def test_archived_or_repeated_customers_cannot_be_merged(admin_user, trio):
    survivor, _second, third = trio
    with pytest.raises(ValidationError):
        customer_merge(survivor=survivor, duplicates=[survivor], actor=admin_user)
    with pytest.raises(ValidationError):
        customer_merge(survivor=survivor, duplicates=[], actor=admin_user)
    customer_archive(customer=third, actor=admin_user)
    third.refresh_from_db()
    with pytest.raises(ValidationError):
        customer_merge(survivor=survivor, duplicates=[third], actor=admin_user)


def test_an_undone_merge_cannot_be_undone_twice(admin_user, trio):
    survivor, second, _third = trio
    record = customer_merge(survivor=survivor, duplicates=[second], actor=admin_user)
    customer_unmerge(record=record, actor=admin_user)
    with pytest.raises(ValidationError):
        customer_unmerge(record=record, actor=admin_user)
