"""Common words are searched by probing each customer's keys instead of collecting every match.

Both plans must give the same answer; COMMON_KEYS=1 makes every word "common".
"""

import pytest

from cim.customers.filters import CustomerFilter
from cim.customers.selectors import customer_count, customer_list
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.search import selectors

QUERIES = [
    "张",
    "张三",
    "zhang",
    "zs",
    "zsf",
    "5678",
    "13812345678",
    "zhang.",
    "sanfeng@wudang.cn",
    "字节",
    "张 sf",
    "李四 5678",
    "nobody",
]


@pytest.fixture
def people(admin_user, make_user):
    sales = make_user("sales", username="seller")
    make_customer(
        admin_user,
        display_name="张三",
        phones=[{"number": "13812345678"}],
        emails=[{"address": "zhang.san@example.com"}],
    )
    make_customer(admin_user, display_name="张三丰", emails=[{"address": "sanfeng@wudang.cn"}], owner_id=sales.pk)
    make_customer(admin_user, display_name="李四", phones=[{"number": "13955555678"}])
    make_customer(admin_user, kind="organization", display_name="北京字节跳动科技有限公司")
    customer_archive(customer=make_customer(admin_user, display_name="张三"), actor=admin_user)
    return sales


def _numbers(user, q: str, sort: str = "-created") -> list[str]:
    return list(customer_list(user=user, filters=CustomerFilter(q=q, sort=sort)).values_list("number", flat=True))


@pytest.mark.parametrize("sort", ["-created", "name"])
def test_both_plans_agree(admin_user, people, monkeypatch, sort):
    for user in (admin_user, people):
        collected = {q: _numbers(user, q, sort) for q in QUERIES}
        monkeypatch.setattr(selectors, "COMMON_KEYS", 1)
        probed = {q: _numbers(user, q, sort) for q in QUERIES}
        monkeypatch.undo()
        assert probed == collected
    assert len(_numbers(admin_user, "张")) == 2 and _numbers(people, "张") == _numbers(people, "zsf")


def test_customer_count_is_capped(admin_user, people):
    everyone = customer_list(user=admin_user, filters=CustomerFilter())
    assert customer_count(everyone) == (4, False)
    assert customer_count(everyone, cap=3) == (3, True)
    assert customer_count(everyone, cap=4) == (4, False)
