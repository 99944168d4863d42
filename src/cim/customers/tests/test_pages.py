"""The customer pages: each page for each role, what they show, inline errors, and the list's query count."""

import pytest
from django.test import Client
from django.urls import reverse

from cim.accounts.roles import Perm, Role, has_perm
from cim.customers.configuration import custom_field_create, tag_create
from cim.customers.models import Customer, CustomFieldDefinition, SavedView, Tag
from cim.customers.numbering import scheme_get
from cim.customers.saved_views import saved_view_save
from cim.customers.selectors import CappedPaginator
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db
ALL_ROLES = [r.value for r in Role]


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def admin(users):
    return users[Role.ADMINISTRATOR]


@pytest.fixture
def customer(admin):
    return make_customer(
        admin,
        display_name="张三",
        company="华为技术有限公司",
        phones=[{"number": "13812345678"}],
        emails=[{"address": "Zhang.San@Example.com"}],
        addresses=[{"province": "广东省", "city": "深圳市", "street": "坂田街道"}],
        tags=["VIP"],
    )


def form_data(**overrides) -> dict:
    data = {
        "kind": "person",
        "display_name": "李四",
        "gender": "",
        "lifecycle_stage": "potential",
        "status": "active",
        "phones-0-number": "139 1234 5678",
        "phones-0-kind": "mobile",
        "phones-primary": "0",
        "emails-0-address": "li.si@example.com",
        "emails-0-kind": "work",
        "addresses-0-kind": "home",
        "addresses-0-province": "",
        "new_tags": "新客户, 华东",
    }
    data.update(overrides)
    return data


# --- access for every role ---------------------------------------------------------------------------------


def test_pages_need_login(client):
    response = client.get(reverse("customers:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_list_and_detail_for_every_role(users, admin, customer, role):
    client = client_for(users[role])
    assert client.get(reverse("customers:list")).status_code == 200
    visible = Customer.objects.visible_to(users[role]).filter(pk=customer.pk).exists()
    response = client.get(reverse("customers:detail", args=[customer.number]))
    assert response.status_code == (200 if visible else 404)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_create_page_by_role(users, role):
    response = client_for(users[role]).get(reverse("customers:create"))
    assert response.status_code == (200 if has_perm(users[role], Perm.CUSTOMER_CHANGE) else 403)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_edit_page_by_role(users, role):
    own = make_customer(users[Role.ADMINISTRATOR], owner_id=users[role].pk)
    response = client_for(users[role]).get(reverse("customers:edit", args=[own.number]))
    assert response.status_code == (200 if has_perm(users[role], Perm.CUSTOMER_CHANGE) else 403)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_archive_by_role(users, role):
    own = make_customer(users[Role.ADMINISTRATOR], owner_id=users[role].pk)
    response = client_for(users[role]).post(reverse("customers:archive", args=[own.number]), {"reason": "dup"})
    allowed = has_perm(users[role], Perm.CUSTOMER_ARCHIVE)
    assert response.status_code == (302 if allowed else 403)
    own.refresh_from_db()
    assert own.is_archived == allowed


@pytest.mark.parametrize("role", ALL_ROLES)
def test_bulk_tag_by_role(users, role):
    own = make_customer(users[Role.ADMINISTRATOR], owner_id=users[role].pk)
    response = client_for(users[role]).post(
        reverse("customers:bulk_tag"), {"ids": [own.pk], "tag": "重点", "op": "add"}
    )
    allowed = has_perm(users[role], Perm.CUSTOMER_TAG)
    assert response.status_code == (302 if allowed else 403)
    assert own.tags.filter(name="重点").exists() == allowed


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize(
    "name", ["settings", "settings_tags", "settings_fields", "settings_numbering", "settings_numbering_example"]
)
def test_settings_pages_by_role(users, role, name):
    response = client_for(users[role]).get(reverse(f"customers:{name}"))
    assert response.status_code == (200 if has_perm(users[role], Perm.SETTINGS_MANAGE) else 403)


def test_settings_link_only_for_settings_managers(users):
    assert reverse("customers:settings") in client_for(users[Role.ADMINISTRATOR]).get("/").content.decode()
    assert reverse("customers:settings") not in client_for(users[Role.SALES]).get("/").content.decode()


def test_pages_follow_the_browser_language(admin, customer):
    assert "新客户".encode() not in client_for(admin, "en").get("/").content
    response = client_for(admin, "zh-hans").get("/")
    assert response.status_code == 200
    assert b'lang="zh-hans"' in response.content


# --- list ----------------------------------------------------------------------------------------------------


def test_list_shows_columns_and_total(admin, customer):
    page = client_for(admin).get(reverse("customers:list")).content.decode()
    for text in (customer.number, "张三", "华为技术有限公司", "+8613812345678", "zhang.san@example.com", "VIP"):
        assert text in page
    assert "1 customer" in page


def test_list_shows_choices_by_their_label_in_the_users_language(admin):
    make_customer(admin, display_name="王五", customer_type="distributor", lifecycle_stage="loyal", status="inactive")

    def results(language: str) -> str:  # the rows alone: the filter form lists every label anyway
        response = client_for(admin, language).get(
            reverse("customers:list"), {"status": "any"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
        )
        return response.content.decode()

    english = results("en")
    assert "Distributor" in english and "Loyal" in english and "Inactive" in english
    chinese = results("zh-hans")
    assert "经销商" in chinese and "忠诚客户" in chinese and "不活跃" in chinese and "Loyal" not in chinese


def test_list_counts_only_some_pages_ahead(admin, customer, monkeypatch):
    """A long list says "more than N" instead of counting every row, and its pages still work."""
    monkeypatch.setattr(CappedPaginator, "MIN_CAP", 1)
    monkeypatch.setattr(CappedPaginator, "PAGES_AHEAD", 1)
    for i in range(60):
        make_customer(admin, display_name=f"客户{i}")
    client = client_for(admin, "zh-hans")
    page = client.get(reverse("customers:list")).content.decode()  # counted to 2 pages of 25
    assert "超过 50 个客户" in page and "?page=2" in page
    last = client.get(reverse("customers:list"), {"page": 3}).content.decode()  # counted to 4 pages: all 61
    assert "共 61 个客户" in last and "显示第 51–61 条" in last


def test_list_keyword_search_and_filters(admin, customer):
    other = make_customer(admin, display_name="王五", customer_type="business")
    client = client_for(admin)
    page = client.get(reverse("customers:list"), {"q": "张三"}).content.decode()
    assert customer.number in page and other.number not in page
    page = client.get(reverse("customers:list"), {"customer_type": "business"}).content.decode()
    assert other.number in page and customer.number not in page
    page = client.get(reverse("customers:list"), {"tag": "VIP"}).content.decode()
    assert customer.number in page and other.number not in page


def test_list_invalid_filter_is_a_message_not_an_error(admin, customer):
    response = client_for(admin).get(reverse("customers:list"), {"kind": "alien", "owner_id": "x", "sort": "bad"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ignored the filter" in page
    assert customer.number in page


def test_list_paging_and_page_size(admin):
    for i in range(30):
        make_customer(admin, display_name=f"客户{i:02d}")
    client = client_for(admin)
    first = client.get(reverse("customers:list"), {"per_page": 25, "sort": "name"}).content.decode()
    assert "客户00" in first and "客户29" not in first and "30 customers" in first
    second = client.get(reverse("customers:list"), {"per_page": 25, "sort": "name", "page": 2}).content.decode()
    assert "客户29" in second and "客户00" not in second
    assert client.get(reverse("customers:list"), {"page": "999", "per_page": "7"}).status_code == 200


def test_list_htmx_returns_the_results_only(admin, customer):
    response = client_for(admin).get(
        reverse("customers:list"), {"q": "张"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="results">')
    assert customer.number in page and "<html" not in page


def _tagged_customers(admin, count):
    for i in range(count):
        make_customer(
            admin,
            display_name=f"客户{i}",
            phones=[{"number": f"1391234{i:04d}"}],
            emails=[{"address": f"c{i}@example.com"}],
            tags=["VIP", f"批次{i % 3}"],
        )


def test_list_query_count_does_not_grow_with_rows(admin, django_assert_max_num_queries):
    client = client_for(admin)
    _tagged_customers(admin, 5)
    client.get(reverse("customers:list"))  # warm the session and user caches
    # 15: the page, plus the navigation bar's counts (my follow-ups, unread notifications: one query each).
    with django_assert_max_num_queries(15) as few:
        assert client.get(reverse("customers:list")).status_code == 200
    _tagged_customers(admin, 30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("customers:list")).content.decode()
    assert "35 customers" in page


# --- detail --------------------------------------------------------------------------------------------------


def test_detail_shows_the_360_view(admin, customer):
    CustomFieldDefinition.objects.create(key="level", label_zh="会员等级", label_en="Member level", field_type="text")
    customer.custom_fields = {"level": "gold"}
    customer.save()
    page = client_for(admin).get(reverse("customers:detail", args=[customer.number])).content.decode()
    for text in (
        "张三",
        "+8613812345678",
        "zhang.san@example.com",
        "广东省 深圳市 坂田街道",
        "VIP",
        "Member level",
        "gold",
        "Timeline",
        "Created",
    ):
        assert text in page
    zh = client_for(admin, "zh-hans").get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert "会员等级" in zh


def test_detail_asks_nothing_of_the_history_a_customer_does_not_have(users, django_assert_max_num_queries):
    """A manager opens a customer with contact points but no orders, events, follow-ups, tickets or answers: the
    cards of those kinds ask nothing (one query says which kinds the customer has), and scope is tested on the
    loaded customer."""
    manager = users[Role.MANAGER]
    customer = make_customer(
        manager, display_name="新客户", phones=[{"number": "13912345678"}], team_id=manager.team_id
    )
    client = client_for(manager)
    client.get(reverse("customers:detail", args=[customer.number]))  # warm the session and the user
    # 28, of which 2 read its history of changes (its creation) and 4 the navigation bar (whether the team receives
    # shares, which its count of follow-ups then leaves out).
    with django_assert_max_num_queries(28):
        page = client.get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert "新客户" in page and "139" in page


def test_the_filter_form_marks_the_chosen_filters(users):
    manager = users[Role.MANAGER]
    page = client_for(manager).get(f"/?gender=female&status=any&owner_id={manager.pk}").content.decode()
    assert '<option value="female" selected>' in page and '<option value="male">' in page
    assert '<option value="any" selected>' in page and '<option value="current">' in page
    assert f'<option value="{manager.pk}" selected>' in page


def test_detail_invalid_number_is_404_with_message(admin):
    response = client_for(admin).get(reverse("customers:detail", args=["not-a-number"]))
    assert response.status_code == 404
    assert "is not a valid customer number" in response.content.decode()


def test_detail_outside_scope_is_404(users, admin):
    foreign = make_customer(admin, owner_id=admin.pk, team_id=None)
    response = client_for(users[Role.SALES]).get(reverse("customers:detail", args=[foreign.number]))
    assert response.status_code == 404


def test_detail_tag_add_and_remove(admin, customer):
    client = client_for(admin)
    url = reverse("customers:tag", args=[customer.number])
    assert client.post(url, {"add": "回头客"}).status_code == 302
    assert set(customer.tags.values_list("name", flat=True)) == {"VIP", "回头客"}
    client.post(url, {"remove": "VIP"})
    assert set(customer.tags.values_list("name", flat=True)) == {"回头客"}
    assert client.post(url, {"add": "x" * 51}).status_code == 302


# --- create and edit -----------------------------------------------------------------------------------------


def test_create_then_shown(users):
    sales = users[Role.SALES]
    client = client_for(sales)
    response = client.post(reverse("customers:create"), form_data())
    assert response.status_code == 302
    created = Customer.objects.get(display_name="李四")
    assert response["Location"] == reverse("customers:detail", args=[created.number])
    assert created.owner == sales
    page = client.get(response["Location"]).content.decode()
    for text in ("李四", "+8613912345678", "li.si@example.com", "新客户", "华东", "was created"):
        assert text in page


def test_create_shows_inline_errors_in_english(admin):
    response = client_for(admin).post(
        reverse("customers:create"),
        form_data(**{"phones-0-number": "12345", "emails-0-address": "not-an-email", "emails-1-address": "ok@x.cn"}),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "This is not a valid phone number." in page
    assert "This is not a valid email address." in page
    assert page.count("is-invalid") >= 2
    assert not Customer.objects.filter(display_name="李四").exists()


def test_create_error_sits_next_to_its_field(admin):
    page = client_for(admin).post(reverse("customers:create"), form_data(**{"phones-0-number": "12345"})).content
    page = page.decode()
    field_at = page.index('name="phones-0-number"')
    error_at = page.index("is not a valid phone number")
    assert 0 < error_at - field_at < 400


def test_create_without_name_and_bad_uscc(admin):
    page = (
        client_for(admin)
        .post(reverse("customers:create"), form_data(display_name="", kind="organization", uscc="123"))
        .content.decode()
    )
    assert "Enter the customer&#x27;s name." in page or "Enter the customer's name." in page
    assert "uscc" in page


def test_create_too_long_input_is_an_error_not_a_500(admin):
    response = client_for(admin).post(reverse("customers:create"), form_data(**{"phones-0-number": "1" * 80}))
    assert response.status_code == 200
    assert "Enter at most 64 characters." in response.content.decode()


def test_create_with_custom_fields(admin):
    custom_field_create(
        key="level",
        label_zh="会员等级",
        label_en="Member level",
        field_type="choice",
        choices=["gold", "silver"],
        required=True,
        actor=admin,
    )
    custom_field_create(
        key="hobbies",
        label_zh="爱好",
        label_en="Hobbies",
        field_type="multi_choice",
        choices=["golf", "tea"],
        actor=admin,
    )
    client = client_for(admin)
    page = client.get(reverse("customers:create")).content.decode()
    assert "Member level" in page and "Hobbies" in page
    missing = client.post(reverse("customers:create"), form_data()).content.decode()
    assert "This field is required." in missing
    response = client.post(reverse("customers:create"), form_data(cf_level="gold", cf_hobbies=["tea", "golf"]))
    assert response.status_code == 302
    assert Customer.objects.get(display_name="李四").custom_fields == {"level": "gold", "hobbies": ["golf", "tea"]}


def test_edit_changes_and_history(admin, customer):
    client = client_for(admin)
    url = reverse("customers:edit", args=[customer.number])
    page = client.get(url).content.decode()
    assert 'value="张三"' in page and "13812345678" in page and "坂田街道" in page
    data = form_data(display_name="张三丰", lifecycle_stage="loyal", tags=["VIP"], new_tags="")
    data.update(
        {
            "phones-0-number": "13812345678",
            "emails-0-address": "zhang.san@example.com",
            "addresses-0-province": "广东省",
            "addresses-0-city": "深圳市",
            "addresses-0-street": "坂田街道",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.display_name == "张三丰" and customer.lifecycle_stage == "loyal"
    page = client.get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert "Edited" in page and "张三丰" in page and "Loyal" in page and "Potential" in page


def test_edit_bad_email_shows_error(admin, customer):
    response = client_for(admin).post(
        reverse("customers:edit", args=[customer.number]), form_data(**{"emails-0-address": "bad@@example"})
    )
    assert response.status_code == 200
    assert "is-invalid" in response.content.decode()
    customer.refresh_from_db()
    assert customer.display_name == "张三"


# --- archive, restore ----------------------------------------------------------------------------------------


def test_archive_and_restore(admin, customer):
    client = client_for(admin)
    assert client.get(reverse("customers:archive", args=[customer.number])).status_code == 405
    client.post(reverse("customers:archive", args=[customer.number]), {"reason": "重复"}, follow=True)
    customer.refresh_from_db()
    assert customer.is_archived
    assert customer.number not in client.get(reverse("customers:list")).content.decode()
    page = client.get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert "Restore" in page and "Archived" in page
    client.post(reverse("customers:restore", args=[customer.number]))
    customer.refresh_from_db()
    assert not customer.is_archived


def test_archived_listed_with_status_filter(admin, customer):
    customer_archive(customer=customer, actor=admin)
    page = client_for(admin).get(reverse("customers:list"), {"status": "archived"}).content.decode()
    assert customer.number in page


# --- bulk tagging and saved views ----------------------------------------------------------------------------


def test_bulk_tag_add_and_remove_with_count(admin):
    customers = [make_customer(admin, display_name=f"客户{i}") for i in range(3)]
    client = client_for(admin)
    ids = [c.pk for c in customers]
    response = client.post(
        reverse("customers:bulk_tag"), {"ids": ids, "tag": "双十一", "op": "add", "next": "/?sort=name"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/?sort=name"
    assert "was added to 3 customers" in response.content.decode()
    assert Tag.objects.get(name="双十一").customers.count() == 3
    response = client.post(
        reverse("customers:bulk_tag"), {"ids": ids[:1], "tag": "双十一", "op": "remove"}, follow=True
    )
    assert "was removed from 1 customer." in response.content.decode()


def test_bulk_tag_skips_customers_outside_scope(users, admin):
    foreign = make_customer(admin, owner_id=admin.pk, team_id=None)
    sales = users[Role.SALES]
    own = make_customer(admin, owner_id=sales.pk)
    client_for(sales).post(reverse("customers:bulk_tag"), {"ids": [foreign.pk, own.pk], "tag": "A", "op": "add"})
    assert list(Tag.objects.get(name="A").customers.all()) == [own]


def test_bulk_tag_without_ticks_or_tag(admin):
    client = client_for(admin)
    assert (
        "Tick the customers"
        in client.post(reverse("customers:bulk_tag"), {"tag": "A", "op": "add"}, follow=True).content.decode()
    )
    assert client.post(reverse("customers:bulk_tag"), {"ids": ["1"], "op": "add"}).status_code == 302


def test_saved_views(users, admin):
    sales = users[Role.SALES]
    client = client_for(sales)
    response = client.post(
        reverse("customers:saved_view_create"), {"name": "我的VIP", "query": "tag=VIP&sort=name", "is_shared": "on"}
    )
    assert response.status_code == 302 and response["Location"] == "/?tag=VIP&sort=name"
    view = SavedView.objects.get(user=sales, name="我的VIP")
    assert view.is_shared and view.query == "tag=VIP&sort=name"
    assert "我的VIP" in client.get("/").content.decode()
    private = saved_view_save(user=admin, name="admin only", query="kind=person")
    other_page = client_for(users[Role.ANALYST]).get("/").content.decode()
    assert "我的VIP" in other_page and "admin only" not in other_page
    # Only the owner deletes; others' private views are not found at all.
    assert (
        client_for(users[Role.ANALYST]).post(reverse("customers:saved_view_delete", args=[view.pk])).status_code == 403
    )
    assert client.post(reverse("customers:saved_view_delete", args=[private.pk])).status_code == 404
    assert client.post(reverse("customers:saved_view_delete", args=[view.pk])).status_code == 302
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert client.post(reverse("customers:saved_view_create"), {"name": ""}).status_code == 302


# --- settings ------------------------------------------------------------------------------------------------


def test_settings_tags_create_and_edit(admin):
    client = client_for(admin)
    response = client.post(reverse("customers:settings_tags"), {"name": "VIP", "color": "#ff0000", "description": ""})
    assert response.status_code == 302
    tag = Tag.objects.get(name="VIP")
    assert tag.color == "#ff0000"
    duplicate = client.post(reverse("customers:settings_tags"), {"name": "VIP", "color": "#ff0000"})
    assert "A tag with this name exists." in duplicate.content.decode()
    bad = client.post(reverse("customers:settings_tags"), {"name": "X", "color": "red"})
    assert "Enter a colour as #rrggbb." in bad.content.decode()
    url = reverse("customers:settings_tag_edit", args=[tag.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"name": "贵宾", "color": "#00ff00", "description": "重要客户"})
    tag.refresh_from_db()
    assert (tag.name, tag.color, tag.description) == ("贵宾", "#00ff00", "重要客户")
    assert "贵宾" in client.get(reverse("customers:settings_tags")).content.decode()


def test_settings_tags_forbidden_for_manager(users):
    response = client_for(users[Role.MANAGER]).post(reverse("customers:settings_tags"), {"name": "X"})
    assert response.status_code == 403
    assert not Tag.objects.filter(name="X").exists()


def test_settings_custom_fields(admin):
    client = client_for(admin)
    response = client.post(
        reverse("customers:settings_fields"),
        {
            "key": "level",
            "label_zh": "会员等级",
            "label_en": "Member level",
            "field_type": "choice",
            "choices_text": "gold\nsilver\n",
            "required": "on",
            "position": "2",
        },
    )
    assert response.status_code == 302
    definition = CustomFieldDefinition.objects.get(key="level")
    assert definition.choices == ["gold", "silver"] and definition.required and definition.position == 2
    no_choices = client.post(
        reverse("customers:settings_fields"),
        {"key": "grade", "label_zh": "等级", "label_en": "Grade", "field_type": "choice", "position": "0"},
    )
    assert "A choice field needs at least one choice." in no_choices.content.decode()
    bad_key = client.post(
        reverse("customers:settings_fields"),
        {"key": "Bad Key", "label_zh": "x", "label_en": "x", "field_type": "text", "position": "0"},
    )
    assert "Use lower-case letters" in bad_key.content.decode()
    url = reverse("customers:settings_field_edit", args=[definition.pk])
    assert client.get(url).status_code == 200
    client.post(
        url,
        {
            "label_zh": "等级",
            "label_en": "Level",
            "choices_text": "gold\nsilver\nbronze",
            "position": "1",
            "is_active": "on",
        },
    )
    definition.refresh_from_db()
    assert definition.label_en == "Level" and definition.choices == ["gold", "silver", "bronze"]
    assert not definition.required
    client.post(reverse("customers:settings_field_active", args=[definition.pk]))
    definition.refresh_from_db()
    assert not definition.is_active
    assert "Level" not in client.get(reverse("customers:create")).content.decode()


def test_settings_numbering(admin):
    client = client_for(admin)
    example = client.get(
        reverse("customers:settings_numbering_example"), {"prefix": "kh", "date_part": "", "sequence_width": "4"}
    ).content.decode()
    assert example.strip().startswith("KH-0001")
    response = client.post(
        reverse("customers:settings_numbering"),
        {"prefix": "KH", "date_part": "", "sequence_width": "4", "check_digit": ""},
    )
    assert response.status_code == 302
    scheme = scheme_get()
    assert (scheme.prefix, scheme.date_part, scheme.sequence_width, scheme.check_digit) == ("KH", "", 4, False)
    bad = client.post(
        reverse("customers:settings_numbering"), {"prefix": "K1", "date_part": "", "sequence_width": "20"}
    )
    assert "Use up to 6 letters A–Z." in bad.content.decode()
    assert make_customer(admin).number.startswith("KH-")


def test_settings_tag_created_in_service_shows(admin):
    tag_create(name="老客户", color="#123456", actor=admin)
    assert "老客户" in client_for(admin).get(reverse("customers:settings_tags")).content.decode()
