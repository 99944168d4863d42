"""Customer services: every write normalises, validates per field, audits, and checks the actor's role."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from stdnum.cn import uscc as stdnum_uscc

from cim.accounts.roles import Role
from cim.audit.models import AuditEvent, FieldChange
from cim.core.context import set_request_id
from cim.customers import configuration
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, CustomerTag, Tag
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import customer_list
from cim.customers.services import (
    PermissionDenied,
    customer_archive,
    customer_restore,
    customer_update,
    customers_tag,
)
from cim.customers.tests.factories import make_customer

USCC = "91110108551385082" + stdnum_uscc.calc_check_digit("91110108551385082")


@pytest.fixture(autouse=True)
def _request_id():
    set_request_id("test-request-0001")
    yield
    set_request_id("")


def _errors(call, *args, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return info.value.message_dict


def _events(customer, action=None):
    events = AuditEvent.objects.filter(target_type="customers.customer", target_id=str(customer.pk))
    return events.filter(action=action) if action else events


def _update(customer, actor, **fields):
    return customer_update(customer=customer, data=CustomerInput(**fields), actor=actor)


# --- create ------------------------------------------------------------------------------------------


def test_create_person_normalises_phones_and_keeps_what_was_typed(admin_user):
    customer = make_customer(
        admin_user,
        display_name="  张三 ",
        phones=[{"number": "+86 138-1234-5678"}, {"number": "０１０－６２３４５６７８", "kind": "work"}],
    )
    phones = {p.number: p for p in customer.phones.all()}
    assert set(phones) == {"+8613812345678", "+861062345678"}
    assert phones["+8613812345678"].raw == "+86 138-1234-5678"
    assert phones["+861062345678"].raw == "010-62345678"
    assert phones["+861062345678"].kind == "work"
    assert customer.display_name == "张三"
    assert customer.kind == "person"
    assert customer.status == "active"


def test_create_lower_cases_emails_and_keeps_raw(admin_user):
    customer = make_customer(
        admin_user, emails=[{"address": " Zhang.San@Example.COM "}, {"address": "ｚｓ＠ｑｑ．ｃｏｍ"}]
    )
    emails = {e.address: e for e in customer.emails.all()}
    assert set(emails) == {"zhang.san@example.com", "zs@qq.com"}
    assert emails["zhang.san@example.com"].raw == "Zhang.San@Example.COM"


def test_create_collapses_duplicate_contacts_in_the_input(admin_user):
    customer = make_customer(
        admin_user,
        phones=[{"number": "13812345678"}, {"number": "+86 138 1234 5678"}, {"number": "008613812345678"}],
        emails=[{"address": "a@example.com"}, {"address": "A@EXAMPLE.COM"}],
    )
    assert customer.phones.count() == 1
    assert customer.phones.get().raw == "13812345678"  # the first as typed wins
    assert customer.emails.count() == 1


def test_create_makes_the_first_contact_primary_when_none_is(admin_user):
    customer = make_customer(admin_user, phones=[{"number": "13812345678"}, {"number": "13912345678"}])
    assert [p.number for p in customer.phones.filter(is_primary=True)] == ["+8613812345678"]


def test_create_keeps_only_one_primary(admin_user):
    customer = make_customer(
        admin_user,
        phones=[
            {"number": "13812345678"},
            {"number": "13912345678", "is_primary": True},
            {"number": "13712345678", "is_primary": True},
        ],
        emails=[{"address": "a@example.com", "is_primary": True}, {"address": "b@example.com", "is_primary": True}],
    )
    assert [p.number for p in customer.phones.filter(is_primary=True)] == ["+8613912345678"]
    assert [e.address for e in customer.emails.filter(is_primary=True)] == ["a@example.com"]


def test_create_organization_with_uscc(admin_user):
    customer = make_customer(
        admin_user,
        kind="organization",
        display_name="北京字节跳动科技有限公司",
        uscc=USCC.lower(),
        industry="technology",
    )
    assert customer.kind == "organization"
    assert customer.uscc == USCC
    assert customer.industry == "technology"


def test_create_composes_display_name_from_family_and_given_name(admin_user):
    customer = make_customer(admin_user, display_name="", family_name="张", given_name="三丰")
    assert customer.display_name == "张三丰"


def test_create_allocates_a_number_and_sets_owner_and_team(users, team):
    sales = users[Role.SALES]
    customer = make_customer(sales)
    assert customer.number
    assert customer.owner == sales
    assert customer.team == team
    assert customer.created_by == sales


def test_create_adds_tags_and_addresses(admin_user):
    customer = make_customer(
        admin_user,
        tags=["VIP", " 潜在客户 ", "VIP"],
        addresses=[
            {"province": "北京市", "city": "北京市", "district": "海淀区", "street": "中关村大街1号"},
            {"province": " ", "street": ""},  # empty addresses are dropped
        ],
    )
    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "潜在客户"]
    assert customer.addresses.count() == 1
    assert customer.addresses.get().is_primary


def test_create_writes_one_audit_event_naming_fields_only(admin_user):
    customer = make_customer(admin_user, phones=[{"number": "13812345678"}])
    event = _events(customer).get()
    assert event.action == "customer.create"
    assert event.actor == admin_user
    assert {"display_name", "phones"} <= set(event.fields)


# --- per-field errors --------------------------------------------------------------------------------


def test_invalid_contacts_are_reported_per_position(admin_user):
    errors = _errors(
        make_customer,
        admin_user,
        phones=[{"number": "13812345678"}, {"number": "12345"}],
        emails=[{"address": "ok@example.com"}, {"address": "not-an-email"}],
    )
    assert set(errors) == {"phones.1.number", "emails.1.address"}
    assert Customer.objects.count() == 0


def test_missing_name_is_a_display_name_error(admin_user):
    assert "display_name" in _errors(make_customer, admin_user, display_name="   ")


def test_invalid_uscc_is_a_uscc_error(admin_user):
    errors = _errors(make_customer, admin_user, kind="organization", display_name="某公司", uscc="91110108551385082X")
    assert list(errors) == ["uscc"]


def test_a_person_has_no_uscc(admin_user):
    assert "uscc" in _errors(make_customer, admin_user, kind="person", uscc=USCC)


def test_unknown_owner_and_team_are_errors(admin_user):
    errors = _errors(make_customer, admin_user, owner_id=999_999, team_id=999_999)
    assert {"owner_id", "team_id"} <= set(errors)


def test_cannot_create_archived(admin_user):
    assert "status" in _errors(make_customer, admin_user, status="archived")


def test_too_long_tag_is_an_error_at_its_position(admin_user):
    assert "tags.1" in _errors(make_customer, admin_user, tags=["ok", "x" * 51])


# --- custom fields -----------------------------------------------------------------------------------


@pytest.fixture
def custom_fields(admin_user):
    def define(key, field_type, choices=(), required=False):
        return configuration.custom_field_create(
            key=key,
            label_zh=key,
            label_en=key,
            field_type=field_type,
            choices=list(choices),
            required=required,
            actor=admin_user,
        )

    return {
        "note": define("note", "text"),
        "budget": define("budget", "number"),
        "since": define("since", "date"),
        "level": define("level", "choice", ["金卡", "银卡"]),
        "hobbies": define("hobbies", "multi_choice", ["篮球", "足球", "读书"]),
    }


def test_custom_field_values_are_cleaned_by_type(admin_user, custom_fields):
    customer = make_customer(
        admin_user,
        custom_fields={
            "note": "  常客 ",
            "budget": "1200.50",
            "since": "2024-03-01",
            "level": "金卡",
            "hobbies": ["读书", "篮球", "读书"],
        },
    )
    assert customer.custom_fields == {
        "note": "常客",
        "budget": 1200.5,
        "since": "2024-03-01",
        "level": "金卡",
        "hobbies": ["篮球", "读书"],  # in the definition's order, once each
    }


def test_whole_numbers_are_stored_as_integers(admin_user, custom_fields):
    assert make_customer(admin_user, custom_fields={"budget": "30000"}).custom_fields == {"budget": 30000}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("budget", "lots"),
        ("budget", True),
        ("budget", "NaN"),
        ("budget", "Infinity"),
        ("since", "2024-13-01"),
        ("since", "01/03/2024"),
        ("level", "铜卡"),
        ("hobbies", ["篮球", "游泳"]),
        ("note", "x" * 1001),
        ("unknown_field", "x"),
    ],
)
def test_invalid_custom_field_values_are_errors_under_their_key(admin_user, custom_fields, key, value):
    assert list(_errors(make_customer, admin_user, custom_fields={key: value})) == [f"custom_fields.{key}"]


def test_required_custom_field(admin_user, custom_fields):
    configuration.custom_field_update(definition=custom_fields["level"], required=True, actor=admin_user)
    assert list(_errors(make_customer, admin_user)) == ["custom_fields.level"]
    assert list(_errors(make_customer, admin_user, custom_fields={"level": ""})) == ["custom_fields.level"]
    assert make_customer(admin_user, custom_fields={"level": "银卡"}).custom_fields == {"level": "银卡"}


def test_inactive_custom_field_is_not_accepted(admin_user, custom_fields):
    configuration.custom_field_update(definition=custom_fields["note"], is_active=False, actor=admin_user)
    assert "custom_fields.note" in _errors(make_customer, admin_user, custom_fields={"note": "x"})


def test_custom_field_update_merges_and_empty_value_removes(admin_user, custom_fields):
    customer = make_customer(admin_user, custom_fields={"note": "a", "level": "金卡"})
    _update(customer, admin_user, custom_fields={"level": "银卡"})
    customer.refresh_from_db()
    assert customer.custom_fields == {"note": "a", "level": "银卡"}
    _update(customer, admin_user, custom_fields={"note": None})
    customer.refresh_from_db()
    assert customer.custom_fields == {"level": "银卡"}


def test_choice_definition_needs_choices(admin_user):
    with pytest.raises(ValidationError) as info:
        configuration.custom_field_create(
            key="tier", label_zh="等级", label_en="Tier", field_type="choice", choices=[" "], actor=admin_user
        )
    assert "choices" in info.value.message_dict


# --- update ------------------------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent_and_records_old_and_new(admin_user):
    customer = make_customer(admin_user, display_name="张三", job_title="经理", value_tier="low", notes="老客户")
    _update(customer, admin_user, job_title="总监", value_tier="vip")
    customer.refresh_from_db()
    assert (customer.display_name, customer.job_title, customer.value_tier, customer.notes) == (
        "张三",
        "总监",
        "vip",
        "老客户",
    )
    event = _events(customer, "customer.update").get()
    assert sorted(event.fields) == ["job_title", "value_tier"]
    changes = {c.field: (c.old_value, c.new_value) for c in event.changes.all()}
    assert changes == {"job_title": ("经理", "总监"), "value_tier": ("low", "vip")}


def test_update_of_phones_replaces_them_and_keeps_values_in_change_history_only(admin_user):
    customer = make_customer(admin_user, phones=[{"number": "13812345678"}])
    _update(customer, admin_user, phones=[{"number": "13912345678"}])
    assert list(customer.phones.values_list("number", flat=True)) == ["+8613912345678"]
    event = _events(customer, "customer.update").get()
    assert event.fields == ["phones"]
    change = event.changes.get()
    assert (change.old_value, change.new_value) == ("+8613812345678", "+8613912345678")


def test_update_without_phones_leaves_phones_alone(admin_user):
    customer = make_customer(admin_user, phones=[{"number": "13812345678"}])
    _update(customer, admin_user, alias="老张")
    assert customer.phones.count() == 1


def test_noop_update_writes_no_audit_event(admin_user):
    customer = make_customer(
        admin_user,
        display_name="张三",
        phones=[{"number": "13812345678"}],
        emails=[{"address": "a@example.com"}],
        tags=["VIP"],
        birthday=date(1990, 1, 2),
    )
    before = customer.updated_at
    _update(
        customer,
        admin_user,
        display_name=" 张三 ",
        phones=[{"number": "+86 138 1234 5678"}],
        emails=[{"address": "A@Example.com"}],
        tags=["VIP"],
        birthday="1990-01-02",
    )
    assert _events(customer, "customer.update").count() == 0
    customer.refresh_from_db()
    assert customer.updated_at == before


def test_update_validation_error_changes_nothing(admin_user):
    customer = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}])
    errors = _errors(_update, customer, admin_user, display_name="李四", phones=[{"number": "bad"}])
    assert list(errors) == ["phones.0.number"]
    customer.refresh_from_db()
    assert customer.display_name == "张三"
    assert customer.phones.get().number == "+8613812345678"


def test_update_tags_records_the_tag_change(admin_user):
    customer = make_customer(admin_user, tags=["VIP", "老客户"])
    _update(customer, admin_user, tags=["VIP", "新客户"])
    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "新客户"]
    change = FieldChange.objects.get(event__in=_events(customer, "customer.update"), field="tags")
    assert (change.old_value, change.new_value) == ("VIP, 老客户", "VIP, 新客户")


# --- archive and restore -----------------------------------------------------------------------------


def test_archive_and_restore(admin_user):
    customer = make_customer(admin_user)
    customer_archive(customer=customer, actor=admin_user, reason="客户要求")
    customer.refresh_from_db()
    assert customer.status == "archived"
    archived = _events(customer, "customer.archive").get()
    assert archived.note == "客户要求"
    assert {c.field: (c.old_value, c.new_value) for c in archived.changes.all()} == {"status": ("active", "archived")}
    assert customer not in customer_list(user=admin_user, filters=CustomerFilter())
    assert customer in customer_list(user=admin_user, filters=CustomerFilter(status="archived"))
    assert customer in customer_list(user=admin_user, filters=CustomerFilter(status="any"))

    customer_restore(customer=customer, actor=admin_user)
    customer.refresh_from_db()
    assert customer.status == "active"
    assert _events(customer, "customer.restore").count() == 1
    assert customer in customer_list(user=admin_user, filters=CustomerFilter())


def test_archive_twice_and_restore_active_are_noops(admin_user):
    customer = make_customer(admin_user)
    customer_restore(customer=customer, actor=admin_user)
    customer_archive(customer=customer, actor=admin_user)
    customer_archive(customer=customer, actor=admin_user)
    assert _events(customer, "customer.archive").count() == 1
    assert _events(customer, "customer.restore").count() == 0


def test_inactive_customers_stay_in_the_default_list(admin_user):
    customer = make_customer(admin_user, status="inactive")
    assert customer in customer_list(user=admin_user, filters=CustomerFilter())


# --- bulk tagging ------------------------------------------------------------------------------------


def test_bulk_tag_add_counts_only_customers_that_changed(admin_user):
    a, b, c = (make_customer(admin_user, display_name=n) for n in ("甲", "乙", "丙"))
    make_customer(admin_user, display_name="丁", tags=["VIP"])
    assert customers_tag(customer_ids=[a.pk, b.pk], add=["VIP"], actor=admin_user) == 2
    customers_tag(customer_ids=[c.pk], add=["重点"], actor=admin_user)
    assert customers_tag(customer_ids=[a.pk, b.pk, c.pk, a.pk], add=["VIP"], actor=admin_user) == 1
    assert customers_tag(customer_ids=[a.pk, b.pk, c.pk], add=["VIP"], actor=admin_user) == 0
    assert set(Tag.objects.get(name="VIP").customers.values_list("pk", flat=True)) >= {a.pk, b.pk, c.pk}
    assert AuditEvent.objects.filter(action="customer.tag").count() == 4  # 2 + 1 + 1, none for no-ops


def test_bulk_tag_remove_and_add_together(admin_user):
    a = make_customer(admin_user, display_name="甲", tags=["旧"])
    b = make_customer(admin_user, display_name="乙")
    changed = customers_tag(customer_ids=[a.pk, b.pk], add=["新"], remove=["旧", "不存在"], actor=admin_user)
    assert changed == 2
    assert list(a.tags.values_list("name", flat=True)) == ["新"]
    assert list(b.tags.values_list("name", flat=True)) == ["新"]
    event = _events(a, "customer.tag").get()
    assert event.fields == ["tags"]
    assert event.request_id == "test-request-0001"
    assert "新" in event.note and "旧" in event.note


def test_bulk_tag_remove_only(admin_user):
    a = make_customer(admin_user, display_name="甲", tags=["旧"])
    b = make_customer(admin_user, display_name="乙")
    assert customers_tag(customer_ids=[a.pk, b.pk], remove=["旧"], actor=admin_user) == 1
    assert not CustomerTag.objects.filter(customer=a).exists()
    assert not _events(b, "customer.tag").exists()


def test_bulk_tag_same_tag_in_add_and_remove_adds_it(admin_user):
    a = make_customer(admin_user)
    assert customers_tag(customer_ids=[a.pk], add=["VIP"], remove=["VIP"], actor=admin_user) == 1
    assert list(a.tags.values_list("name", flat=True)) == ["VIP"]


# --- permissions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ANALYST, Role.MARKETING, Role.AUDITOR])
def test_roles_without_change_cannot_create_or_update(users, role):
    with pytest.raises(PermissionDenied):
        make_customer(users[role])
    customer = make_customer(users[Role.ADMINISTRATOR])
    with pytest.raises(PermissionDenied):
        _update(customer, users[role], display_name="改名")
    assert Customer.objects.get().display_name == "张三"


@pytest.mark.parametrize("role", [Role.SERVICE, Role.MARKETING, Role.ANALYST, Role.AUDITOR])
def test_roles_without_archive_cannot_archive_or_restore(users, role):
    customer = make_customer(users[Role.ADMINISTRATOR])
    with pytest.raises(PermissionDenied):
        customer_archive(customer=customer, actor=users[role])
    customer_archive(customer=customer, actor=users[Role.ADMINISTRATOR])
    with pytest.raises(PermissionDenied):
        customer_restore(customer=customer, actor=users[role])


@pytest.mark.parametrize("role", [Role.ANALYST, Role.AUDITOR])
def test_roles_without_tag_cannot_bulk_tag(users, role):
    customer = make_customer(users[Role.ADMINISTRATOR])
    with pytest.raises(PermissionDenied):
        customers_tag(customer_ids=[customer.pk], add=["VIP"], actor=users[role])
    assert not CustomerTag.objects.exists()


def test_marketing_may_tag(users):
    customer = make_customer(users[Role.ADMINISTRATOR])
    assert customers_tag(customer_ids=[customer.pk], add=["活动"], actor=users[Role.MARKETING]) == 1


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMINISTRATOR])
def test_only_administrators_manage_settings(users, role):
    with pytest.raises(PermissionDenied):
        configuration.tag_create(name="VIP", actor=users[role])
    with pytest.raises(PermissionDenied):
        configuration.custom_field_create(key="k", label_zh="k", label_en="k", field_type="text", actor=users[role])
    with pytest.raises(PermissionDenied):
        configuration.numbering_scheme_update(
            actor=users[role], prefix="X", date_part="", sequence_width=6, check_digit=True
        )


def test_inactive_user_is_denied(admin_user):
    admin_user.is_active = False
    with pytest.raises(PermissionDenied):
        make_customer(admin_user)


# --- audit hygiene -----------------------------------------------------------------------------------


def test_audit_events_carry_the_request_id_and_no_personal_contact_values(admin_user):
    set_request_id("req-audit-42")
    customer = make_customer(
        admin_user, phones=[{"number": "13812345678"}], emails=[{"address": "Secret.Person@Example.com"}]
    )
    _update(customer, admin_user, phones=[{"number": "13987654321"}], emails=[{"address": "other@example.com"}])
    customers_tag(customer_ids=[customer.pk], add=["VIP"], actor=admin_user)
    customer_archive(customer=customer, actor=admin_user)
    customer_restore(customer=customer, actor=admin_user)

    events = list(_events(customer))
    assert {e.action for e in events} == {
        "customer.create",
        "customer.update",
        "customer.tag",
        "customer.archive",
        "customer.restore",
    }
    for event in events:
        assert event.request_id == "req-audit-42"
        text = f"{event.note} {event.fields}".lower()
        for secret in ("13812345678", "13987654321", "5678", "4321", "secret.person", "other@example", "@"):
            assert secret not in text, (event.action, secret)


def test_values_that_nfkc_makes_too_long_are_field_errors(admin_user):
    # ㍿ is one character typed, four (株式会社) stored: the column limit applies to what is stored.
    errors = _errors(
        make_customer,
        admin_user,
        display_name="㍿" * 60,
        job_title="㍿" * 30,
        phones=[{"number": "㍿" * 14 + "13812345678"}],
        addresses=[{"province": "㍿" * 13, "street": "长安街"}],
    )
    assert {"display_name", "job_title", "phones.0.number", "addresses.0.province"} <= set(errors)
    assert "200" in errors["display_name"][0]


def test_control_characters_are_dropped_from_stored_text(admin_user, custom_fields):
    customer = make_customer(
        admin_user, display_name="张\x00三", tags=["V\x00IP"], custom_fields={"note": "a\x00b\ud800"}
    )
    assert customer.display_name == "张三"
    assert list(customer.tags.values_list("name", flat=True)) == ["VIP"]
    assert customer.custom_fields == {"note": "ab"}


def test_bulk_tag_rejects_too_long_tag_names(admin_user):
    customer = make_customer(admin_user)
    errors = _errors(customers_tag, customer_ids=[customer.pk], add=["ok", "x" * 51], actor=admin_user)
    assert list(errors) == ["add.1"]
    assert not Tag.objects.exists()


def test_custom_field_labels_are_cleaned_on_update(admin_user, custom_fields):
    definition = configuration.custom_field_update(
        definition=custom_fields["note"], label_zh=" 备\x00注 ", label_en="Ｎｏｔｅ", actor=admin_user
    )
    definition.refresh_from_db()
    assert (definition.label_zh, definition.label_en) == ("备注", "Note")
    with pytest.raises(ValidationError) as info:
        configuration.custom_field_update(definition=definition, label_zh="\x00 ", actor=admin_user)
    assert "label_zh" in info.value.message_dict


def test_update_cannot_bring_a_customer_out_of_the_archive(users, admin_user):
    # Service may edit but not restore; a status change must not be a way around that.
    customer = make_customer(admin_user)
    customer_archive(customer=customer, actor=admin_user)
    for status in ("active", "inactive"):
        assert list(_errors(_update, customer, users[Role.SERVICE], status=status)) == ["status"]
    customer.refresh_from_db()
    assert customer.status == "archived"
    _update(customer, users[Role.SERVICE], alias="归档后改名", status="archived")
    customer.refresh_from_db()
    assert (customer.alias, customer.status) == ("归档后改名", "archived")
