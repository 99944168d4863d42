"""Tagging every customer a filter matches runs in the background worker."""

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from cim.customers.models import CustomerTag
from cim.customers.tests.factories import make_customer


@pytest.fixture
def logged_in(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def test_the_list_queues_a_job_that_tags_every_matching_customer(logged_in, admin_user):
    for name in ("张三", "张三丰", "李四"):
        make_customer(admin_user, display_name=name)
    response = logged_in.post(
        "/customers/bulk-tag/", {"tag": "张姓", "op": "add", "all_matching": "1", "query": "q=zhang"}, follow=True
    )
    assert "in the background" in response.content.decode()
    assert CustomerTag.objects.count() == 0  # nothing done in the request itself
    job = DBTaskResult.objects.get()
    assert job.task.call(**job.args_kwargs["kwargs"]) == 2
    assert sorted(CustomerTag.objects.values_list("customer__display_name", flat=True)) == ["张三", "张三丰"]


def test_without_all_matching_only_ticked_rows_are_tagged(logged_in, admin_user):
    one = make_customer(admin_user, display_name="张三")
    make_customer(admin_user, display_name="张三丰")
    logged_in.post("/customers/bulk-tag/", {"tag": "VIP", "op": "add", "ids": [one.pk], "query": "q=zhang"})
    assert list(CustomerTag.objects.values_list("customer_id", flat=True)) == [one.pk]
    assert not DBTaskResult.objects.exists()
