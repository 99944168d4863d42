"""The data-quality pages for every role, and the journeys: a likely duplicate shown before it is created,
reviewed, merged with chosen values, and unmerged from the survivor's page."""

import pytest
from django.test import Client
from django.urls import reverse

from cim.accounts.roles import Perm, Role, has_perm
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer
from cim.quality.models import DuplicateCandidate, MergeRecord

pytestmark = pytest.mark.django_db
ALL_ROLES = [r.value for r in Role]
NEW = {
    "kind": "person",
    "display_name": "張三",
    "gender": "",
    "lifecycle_stage": "potential",
    "status": "active",
    "phones-0-number": "+86 138 1234 5678",
    "phones-0-kind": "mobile",
    "phones-primary": "0",
}


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


@pytest.fixture
def pair(admin_user):
    first = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")
    second = make_customer(admin_user, display_name="章三", phones=[{"number": "13812345678"}], company="华为")
    return first, second


@pytest.mark.parametrize("role", ALL_ROLES)
def test_duplicates_page_by_role(users, pair, role):
    response = client_for(users[role]).get(reverse("quality:duplicates"))
    assert response.status_code == 200
    page = response.content.decode()
    # Every role sees the pairs of customers it may see: the administrator's, in everyone's team, but for sales.
    assert ("章三" in page) == (role != "sales")
    assert ("Scan all customers" in page) == has_perm(users[role], Perm.QUALITY_MANAGE)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_merge_page_by_role(users, pair, role):
    first, second = pair
    url = f"{reverse('quality:merge')}?survivor={first.number}&duplicates={second.number}"
    expected = 200 if has_perm(users[role], Perm.CUSTOMER_MERGE) else 403
    assert client_for(users[role]).get(url).status_code == expected


def test_a_likely_duplicate_is_shown_before_it_is_created(admin_user, pair):
    client = client_for(admin_user)
    form = NEW
    response = client.post(reverse("customers:create"), form)
    assert response.status_code == 200 and Customer.objects.count() == 2
    page = response.content.decode()
    assert "This looks like a customer you already have" in page and pair[0].number in page
    assert "Create anyway" in page
    response = client.post(reverse("customers:create"), {**form, "keep_both": "1"})
    assert response.status_code == 302 and Customer.objects.count() == 3
    new = Customer.objects.latest("id")
    assert DuplicateCandidate.objects.filter(customer=new, detected_by="page").count() == 2


def test_review_merge_with_a_chosen_value_and_unmerge(admin_user, pair):
    first, second = pair
    client = client_for(admin_user)
    page = client.get(reverse("quality:duplicates")).content.decode()
    assert "Not the same" in page and "Phone +" in page
    merge_url = f"{reverse('quality:merge')}?survivor={first.number}&duplicates={second.number}"
    page = client.get(merge_url).content.decode()
    assert "华为" in page and "1990" in page
    response = client.post(
        reverse("quality:merge"),
        {"survivor": first.number, "duplicates": [second.number], "display_name": str(second.pk)},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.display_name, first.company, str(first.birthday)) == ("章三", "华为", "1990-01-02")
    detail = client.get(reverse("customers:detail", args=[first.number])).content.decode()
    assert "Undo merge" in detail
    second_page = client.get(reverse("customers:detail", args=[second.number])).content.decode()
    assert f"This customer was merged into {first.number}" in second_page

    record = MergeRecord.objects.get()
    assert client.post(reverse("quality:unmerge", args=[record.pk])).status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.display_name, first.company, second.status) == ("张三", "", "active")


def test_not_the_same_leaves_the_queue(admin_user, pair):
    client = client_for(admin_user)
    candidate = DuplicateCandidate.objects.get()
    assert client.post(reverse("quality:distinct", args=[candidate.pk])).status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == "distinct" and candidate.decided_by == admin_user
    assert "No likely duplicates" in client.get(reverse("quality:duplicates")).content.decode()


def test_the_duplicates_page_speaks_chinese(admin_user, pair):
    page = client_for(admin_user, "zh-hans").get(reverse("quality:duplicates")).content.decode()
    assert "重复" in page


def test_two_lists_are_linked_one_to_one_from_the_page(admin_user, pair):
    from django_tasks_db.models import DBTaskResult

    from cim.customers.models import ExternalId

    first, second = pair
    client = client_for(admin_user, "zh-hans")
    assert "一对一关联" not in client.get(reverse("quality:duplicates")).content.decode()  # one system: nothing to link
    ExternalId.objects.create(customer=first, system="shop", value="S-1")
    ExternalId.objects.create(customer=second, system="crm", value="C-1")
    page = client.get(reverse("quality:duplicates")).content.decode()
    # The two systems offered, a different one chosen on each side.
    assert "一对一关联" in page and "<option selected>crm</option>" in page and "<option selected>shop</option>" in page
    refused = client.post(reverse("quality:duplicates"), {"link": ["crm", "crm"]}, follow=True)
    assert "请选择两个不同的系统进行关联" in refused.content.decode() and not DBTaskResult.objects.exists()
    client.post(reverse("quality:duplicates"), {"link": ["shop", "crm"]})
    assert DBTaskResult.objects.get().args_kwargs["kwargs"]["link"] == ["shop", "crm"]


def test_the_customer_page_names_only_the_likely_duplicates_the_user_sees(users):
    sales = users[Role.SALES]
    mine = make_customer(sales, display_name="张三", phones=[{"number": "13812345678"}], owner_id=sales.pk)
    make_customer(users[Role.ADMINISTRATOR], display_name="章三", phones=[{"number": "13812345678"}])
    also_mine = make_customer(sales, display_name="張三", phones=[{"number": "13812345678"}], owner_id=sales.pk)
    assert DuplicateCandidate.objects.filter(status="open").count() == 3
    page = client_for(sales).get(reverse("customers:detail", args=[mine.number])).content.decode()
    assert "Likely duplicates of this customer" in page
    assert also_mine.number in page and "章三" not in page
    page = client_for(users[Role.ADMINISTRATOR]).get(reverse("customers:detail", args=[mine.number])).content.decode()
    assert also_mine.number in page and "章三" in page
