"""Data-quality scores, required fields per customer type on every path, and the periodic review queue."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from cim.accounts.roles import Perm, Role, has_perm
from cim.customers.models import Customer
from cim.customers.schemas import CustomerInput
from cim.customers.services import customer_review, customer_update
from cim.customers.tests.factories import make_customer
from cim.quality.rules import required_fields_set
from cim.quality.scores import FIELDS, _aggregate, _score, _share, customer_completeness, quality_report, review_queue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_report():
    cache.clear()


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_the_report_counts_what_is_filled_per_field_and_source(admin_user):
    make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], source_channel="website")
    make_customer(admin_user, display_name="李四", birthday="1990-01-02", gender="male", source_channel="referral")
    make_customer(admin_user, kind="organization", display_name="华为", source_channel="referral")
    report = quality_report()
    fields = {row["name"]: row["share"] for row in report["fields"]}
    assert report["customers"] == 3
    assert fields["phones"] == pytest.approx(1 / 3) and fields["birthday"] == pytest.approx(2 / 3)
    assert fields["owner"] == 1 and fields["emails"] == 0
    assert [row["source"] for row in report["sources"]] == ["website", "referral"]  # worst first
    assert report["trend"][-1]["customers"] == 3


def test_a_customers_completeness_names_what_it_lacks(admin_user):
    customer = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}])
    with translation.override("en"):
        score, missing = customer_completeness(customer)
    assert 0 < score < 1 and "Email" in missing and "Phone" not in missing


def test_one_customers_completeness_follows_the_rules_the_report_counts_by(admin_user):
    """The 360° page tests a loaded customer in Python; the report counts in SQL. Both must give the same answer."""
    make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], source_channel="website")
    make_customer(admin_user, display_name="李四", birthday="1990-01-02", customer_type="consumer")
    make_customer(admin_user, kind="organization", display_name="华为", emails=[{"address": "hr@huawei.example"}])
    make_customer(
        admin_user, display_name="王五", gender="female", addresses=[{"province": "广东省", "city": "深圳市"}]
    )
    Customer.objects.filter(display_name="王五").update(owner=None)
    customers = Customer.objects.prefetch_related("phones", "emails", "addresses").order_by("pk")
    for customer in customers:
        in_python = customer_completeness(customer)
        in_sql = _share(_aggregate(Customer.objects.filter(pk=customer.pk))[0])
        assert in_python == (_score(in_sql), [str(FIELDS[name][0]) for name, share in in_sql.items() if not share])
    assert len({tuple(customer_completeness(customer)[1]) for customer in customers}) == 4  # each lacks other things


def test_required_fields_are_checked_on_create_update_and_import_alike(admin_user, tmp_path, settings):
    required_fields_set(customer_type="business", fields=["phones", "company"], actor=admin_user)
    with pytest.raises(ValidationError) as error:
        make_customer(admin_user, display_name="王五", customer_type="business")
    assert set(error.value.message_dict) == {"phones", "company"}
    make_customer(admin_user, display_name="王五", customer_type="consumer")  # other types are free
    customer = make_customer(
        admin_user, display_name="赵六", customer_type="business", company="小米", phones=[{"number": "13812345678"}]
    )
    with pytest.raises(ValidationError) as error:
        customer_update(customer=customer, data=CustomerInput(phones=[]), actor=admin_user)
    assert set(error.value.message_dict) == {"phones"}

    from cim.ingest.services import import_job_create, import_run

    settings.MEDIA_ROOT = tmp_path / "uploads"
    path = tmp_path / "a.csv"
    path.write_text("姓名,客户类型,公司\n孙七,business,腾讯\n", encoding="utf-8")
    job = import_job_create(path=path, filename="a.csv", actor=admin_user)
    counts = import_run(job=job, actor=admin_user)
    assert (counts.created, counts.rejected) == (0, 1)


def test_the_review_queue_holds_customers_not_reviewed_lately(admin_user, settings):
    settings.CIM_REVIEW_MONTHS = 6
    never = make_customer(admin_user, display_name="张三")
    stale = make_customer(admin_user, display_name="李四")
    fresh = make_customer(admin_user, display_name="王五")
    Customer.objects.filter(pk=stale.pk).update(reviewed_at=timezone.now() - timedelta(days=200))
    customer_review(customer=fresh, actor=admin_user)
    assert list(review_queue(user=admin_user)) == [never, stale]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_quality_pages_by_role(users, role):
    make_customer(users["administrator"], display_name="张三")
    client = client_for(users[role])
    assert client.get(reverse("quality:overview")).status_code == 200
    assert client.get(reverse("quality:review")).status_code == 200
    settings_page = client.get(reverse("quality:required_fields")).status_code
    assert settings_page == (200 if has_perm(users[role], Perm.SETTINGS_MANAGE) else 403)


def test_mark_reviewed_from_the_queue_and_required_fields_from_settings(admin_user):
    customer = make_customer(admin_user, display_name="张三")
    client = client_for(admin_user)
    page = client.get(reverse("quality:review")).content.decode()
    assert customer.number in page and "Mark reviewed" in page
    response = client.post(
        reverse("quality:customer_review", args=[customer.number]), {"next": reverse("quality:review")}
    )
    assert response["Location"] == reverse("quality:review")
    assert customer.number not in client.get(reverse("quality:review")).content.decode()
    client.post(reverse("quality:required_fields"), {"required-all": ["phones"], "required-business": ["company"]})
    page = client.get(reverse("quality:required_fields")).content.decode()
    assert page.count("checked") == 2


def test_the_overview_speaks_chinese(admin_user):
    make_customer(admin_user, display_name="张三")
    page = client_for(admin_user, "zh-hans").get(reverse("quality:overview")).content.decode()
    assert "数据质量" in page and "完整" in page
