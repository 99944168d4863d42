"""Segments as a business keeps them: members follow the rules, tag rules keep tags, static lists, filters."""

import pytest
from django.core.exceptions import ValidationError
from django.utils.translation import override

from cim.activities.timeline import timeline_page
from cim.customers.filters import CustomerFilter
from cim.customers.models import CustomerTag
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import customer_list
from cim.customers.services import PermissionDenied, customer_update, customers_tag
from cim.customers.tests.factories import make_customer
from cim.privacy.services import restriction_set
from cim.segments.models import Segment
from cim.segments.pipeline import customer_analytics_refresh
from cim.segments.services import (
    segment_create,
    segment_delete,
    segment_members_add,
    segment_members_remove,
    segment_refresh,
    segment_update,
    segments_refresh,
)
from cim.segments.tests.test_rules import buy

FEMALE = {"match": "all", "rules": [{"field": "gender", "operator": "eq", "value": "female"}]}
BIG_SPENDERS = {"match": "all", "rules": [{"field": "total_spent", "operator": "gte", "value": 500}]}


def members(segment: Segment) -> set[str]:
    return set(segment.members.values_list("customer__display_name", flat=True))


def test_dynamic_segment_follows_its_rules(admin_user):
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    make_customer(admin_user, display_name="李雷", gender="male")
    segment = segment_create(actor=admin_user, name="女性客户", rules=FEMALE)
    assert members(segment) == {"王芳"} and segment.size == 1 and segment.refreshed_at
    min_ = make_customer(admin_user, display_name="赵敏", gender="female")
    customer_update(customer=fang, data=CustomerInput(gender="male"), actor=admin_user)
    run = segment_refresh(segment=segment)
    assert (run.entered, run.left) == (1, 1)
    assert members(segment) == {"赵敏"}
    assert segment_refresh(segment=segment).entered == 0
    assert [c.pk for c in customer_list(user=admin_user, filters=CustomerFilter(segment=segment.pk))] == [min_.pk]


def test_a_customer_restricted_to_storage_leaves_segments_and_keeps_its_tags(admin_user):
    fang = make_customer(admin_user, display_name="王芳", gender="female")
    make_customer(admin_user, display_name="赵敏", gender="female")
    segment = segment_create(actor=admin_user, name="女性客户", rules=FEMALE)
    assert members(segment) == {"王芳", "赵敏"}
    restriction_set(customer=fang, actor=admin_user)
    segment_refresh(segment=segment)
    assert members(segment) == {"赵敏"}
    assert customers_tag(customer_ids=[fang.pk], add=["VIP"], actor=admin_user) == 0
    assert not fang.tags.exists()


def test_tag_rule_adds_and_removes_the_tag_and_shows_on_the_timeline(admin_user):
    rich = make_customer(admin_user, display_name="钱多多")
    poor = make_customer(admin_user, display_name="穷光蛋")
    customers_tag(customer_ids=[poor.pk], add=["VIP"], actor=admin_user)  # by hand, but the rule owns VIP now
    buy(rich, admin_user, 3, "800")
    customer_analytics_refresh()
    segment = segment_create(actor=admin_user, name="大客户", rules=BIG_SPENDERS, tag="VIP")
    assert set(CustomerTag.objects.filter(tag__name="VIP").values_list("customer__display_name", flat=True)) == {
        "钱多多"
    }
    with override("en"):
        entries = timeline_page(customer_id=rich.pk, kinds=["change"]).entries
    assert any(e.title == "Tags changed" and e.note == "+VIP (大客户)" for e in entries)
    segment_update(segment=segment, actor=admin_user, rules=FEMALE)
    assert not CustomerTag.objects.filter(tag__name="VIP").exists()


def test_refresh_runs_dependencies_first_and_loops_are_refused(admin_user):
    make_customer(admin_user, display_name="王芳", gender="female")
    women = segment_create(actor=admin_user, name="女性", rules=FEMALE)
    in_women = {"rules": [{"field": "segment", "operator": "in", "value": women.pk}]}
    not_in_women = {"rules": [{"field": "segment", "operator": "not_in", "value": women.pk}]}
    derived = segment_create(actor=admin_user, name="女性的子集", rules=in_women)
    assert members(derived) == {"王芳"}
    with override("en"), pytest.raises(ValidationError) as error:
        segment_update(
            segment=women,
            actor=admin_user,
            rules={"rules": [{"field": "segment", "operator": "in", "value": derived.pk}]},
        )
    assert error.value.message_dict["rules"] == ["These rules name a segment that names this one: a loop."]
    make_customer(admin_user, display_name="赵敏", gender="female")
    assert [run.segment.name for run in segments_refresh()] == ["女性", "女性的子集"]
    assert members(derived) == {"王芳", "赵敏"}
    others = segment_create(actor=admin_user, name="其他", rules=not_in_women)
    assert members(others) == set()
    with override("en"), pytest.raises(ValidationError) as error:
        segment_delete(segment=women, actor=admin_user)
    assert error.value.message_dict["segment"] == ["Used by the rules of: 其他, 女性的子集."]


def test_static_list_members_by_hand(admin_user, users):
    a = make_customer(admin_user, display_name="甲")
    b = make_customer(admin_user, display_name="乙")
    listing = segment_create(actor=admin_user, name="展会名单", kind="static")
    assert segment_members_add(segment=listing, customer_ids=[a.pk, b.pk, a.pk], actor=admin_user) == 2
    assert segment_members_add(segment=listing, customer_ids=[a.pk], actor=admin_user) == 0
    assert segment_members_remove(segment=listing, customer_ids=[a.pk], actor=admin_user) == 1
    listing.refresh_from_db()
    assert members(listing) == {"乙"} and listing.size == 1
    assert segment_refresh(segment=listing).left == 0  # rules never empty a static list
    with pytest.raises(PermissionDenied):
        segment_members_add(segment=listing, customer_ids=[a.pk], actor=users["auditor"])


def test_validation_errors_per_field(admin_user, users):
    segment_create(actor=admin_user, name="女性", rules=FEMALE)
    with override("en"), pytest.raises(ValidationError) as error:
        segment_create(actor=admin_user, name="女性", kind="sometimes", rules=None)
    assert error.value.message_dict == {
        "name": ["A segment with this name exists."],
        "kind": ["Choose dynamic or static."],
    }
    with pytest.raises(PermissionDenied):
        segment_create(actor=users["sales"], name="我的", rules=FEMALE)


def test_merge_moves_list_memberships_and_leaves_scores_to_the_refresh(admin_user):
    from cim.analytics.models import CustomerScore
    from cim.quality.merge import customer_merge, customer_unmerge

    survivor = make_customer(admin_user, display_name="王芳")
    duplicate = make_customer(admin_user, display_name="王芳")
    buy(duplicate, admin_user, 3, "100")
    customer_analytics_refresh()
    listing = segment_create(actor=admin_user, name="名单", kind="static")
    segment_members_add(segment=listing, customer_ids=[duplicate.pk], actor=admin_user)
    record = customer_merge(survivor=survivor, duplicates=[duplicate], actor=admin_user)
    assert members(listing) == {"王芳"} and listing.members.get().customer_id == survivor.pk
    customer_analytics_refresh()
    assert CustomerScore.objects.get(customer=survivor).orders == 1
    customer_unmerge(record=record, actor=admin_user)
    assert listing.members.get().customer_id == duplicate.pk


def test_a_segment_a_campaign_sends_to_cannot_be_deleted(admin_user):
    from cim.automation.campaigns import campaign_create

    audience = segment_create(actor=admin_user, name="活动名单", kind=Segment.Kind.STATIC)
    greeting = {"subject": "您好", "body": "新春快乐"}
    campaign_create(actor=admin_user, name="春节问候", segment=audience.pk, variants=[greeting])
    with override("en"), pytest.raises(ValidationError) as refused:
        segment_delete(segment=audience, actor=admin_user)
    assert "春节问候" in str(refused.value.message_dict["segment"])
    assert Segment.objects.filter(pk=audience.pk).exists()
