"""Search results come in the list's order, page by page, however the index hands them over."""

import pytest

from cim.core.pagination import keyset_page
from cim.customers.filters import CustomerFilter
from cim.customers.selectors import customer_count, customer_list
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer


@pytest.fixture
def people(admin_user):
    made = [
        make_customer(admin_user, display_name=name, phones=[{"number": f"1381234{i:04d}"}])
        for i, name in enumerate(["张三", "张三丰", "李四", "张伟", "张小明", "王张", "赵六"])
    ]
    customer_archive(customer=make_customer(admin_user, display_name="张三"), actor=admin_user)
    return made


def _numbers(queryset) -> list[str]:
    return [c.number for c in queryset]


@pytest.mark.parametrize("sort", ["-created", "created", "name", "-number"])
def test_search_results_follow_the_sort(admin_user, people, sort):
    found = customer_list(user=admin_user, filters=CustomerFilter(q="张", sort=sort))
    everyone = customer_list(user=admin_user, filters=CustomerFilter(sort=sort))
    assert _numbers(found) == [c.number for c in everyone if "张" in c.display_name]
    assert len(_numbers(found)) == 5


@pytest.mark.parametrize("sort", ["-created", "created", "name"])
def test_search_pages_with_a_cursor_cover_every_match_once(admin_user, people, sort):
    filters = CustomerFilter(q="张", sort=sort)
    seen, cursor = [], None
    while True:
        items, cursor = keyset_page(customer_list(user=admin_user, filters=filters), cursor=cursor, limit=2)
        seen += _numbers(items)
        if cursor is None:
            break
    assert seen == _numbers(customer_list(user=admin_user, filters=filters))


def test_customer_count_is_capped(admin_user, people):
    found = customer_list(user=admin_user, filters=CustomerFilter(q="张"))
    assert customer_count(found) == (5, False)
    assert customer_count(found, cap=3) == (3, True)
    assert customer_count(found, cap=5) == (5, False)
