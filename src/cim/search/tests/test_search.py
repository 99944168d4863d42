"""Keyword search: every kind of query a person types finds the right customers, on SQLite and PostgreSQL."""

import io
import json
import re

import pytest
from django.core.management import call_command

from cim.customers.filters import CustomerFilter
from cim.customers.schemas import CustomerInput
from cim.customers.selectors import customer_list
from cim.customers.services import customer_archive, customer_update
from cim.customers.tests.factories import make_customer
from cim.search.models import SearchDocument
from cim.search.services import search_index_rebuild
from cim.search.tokens import HASH


@pytest.fixture
def people(admin_user):
    make = make_customer
    return {
        "zhangsan": make(
            admin_user,
            display_name="张三",
            family_name="张",
            given_name="三",
            phones=[{"number": "13812345678"}],
            emails=[{"address": "Zhang.San@Example.com"}],
            value_tier="vip",
        ),
        "zhangsanfeng": make(
            admin_user,
            display_name="张三丰",
            alias="太极张",
            phones=[{"number": "13900001111"}],
            emails=[{"address": "sanfeng@wudang.cn"}],
        ),
        "lisi": make(
            admin_user,
            display_name="李四",
            phones=[{"number": "010-62345678"}],
            emails=[{"address": "lisi@example.com"}],
            value_tier="low",
        ),
        "traditional": make(admin_user, display_name="陳國華"),
        "bytedance": make(
            admin_user, kind="organization", display_name="北京字节跳动科技有限公司", company="北京字节跳动科技有限公司"
        ),
        "john": make(
            admin_user,
            display_name="John Smith",
            english_name="John Smith",
            phones=[{"number": "+1 650 253 0000"}],
            emails=[{"address": "jsmith@corp.example"}],
        ),
        "zhangwei": make(
            admin_user, display_name="张伟", english_name="David Zhang", phones=[{"number": "13755555678"}]
        ),
    }


def _search(user, q, **filters) -> set[str]:
    return {c.display_name for c in customer_list(user=user, filters=CustomerFilter(q=q, **filters))}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Chinese characters: any prefix of any suffix of a name
        ("张", {"张三", "张三丰", "张伟"}),
        ("张三", {"张三", "张三丰"}),
        ("张三丰", {"张三丰"}),
        ("三丰", {"张三丰"}),
        ("丰", {"张三丰"}),
        ("李四", {"李四"}),
        # traditional and simplified find each other
        ("張三", {"张三", "张三丰"}),
        ("張三豐", {"张三丰"}),
        ("陈国华", {"陳國華"}),
        ("陳國華", {"陳國華"}),
        ("国华", {"陳國華"}),
        # pinyin, whole, prefix and initials, any case
        ("zhangsan", {"张三", "张三丰"}),
        ("ZhangSan", {"张三", "张三丰"}),
        ("zhangsanfeng", {"张三丰"}),
        ("zhangs", {"张三", "张三丰"}),
        ("sanfeng", {"张三丰"}),
        ("lisi", {"李四"}),
        ("chenguohua", {"陳國華"}),
        ("zs", {"张三", "张三丰"}),
        ("zsf", {"张三丰"}),
        ("ZSF", {"张三丰"}),
        ("ls", {"李四"}),
        # company names, from any word boundary
        ("字节", {"北京字节跳动科技有限公司"}),
        ("字节跳动", {"北京字节跳动科技有限公司"}),
        ("zijietiaodong", {"北京字节跳动科技有限公司"}),
        ("北京", {"北京字节跳动科技有限公司"}),
        ("位元組跳動", set()),  # a different word, not just another script
        # English names
        ("john", {"John Smith"}),
        ("JOHN", {"John Smith"}),
        ("smith", {"John Smith"}),
        ("smi", {"John Smith"}),
        ("John Smith", {"John Smith"}),
        ("ｊｏｈｎ", {"John Smith"}),
        ("david", {"张伟"}),
        # alias
        ("太极张", {"张三丰"}),
        ("太极", {"张三丰"}),
        # several words must all match
        ("张 5678", {"张三", "张伟"}),
        ("张三 5678", {"张三"}),
        ("张，vip", set()),
        ("张 1111", {"张三丰"}),
        ("john 张", set()),
        # nothing matches
        ("王五", set()),
        ("wangwu", set()),
        ("xyz", set()),
        ("9999", set()),
    ],
)
def test_name_pinyin_and_word_queries(admin_user, people, query, expected):
    assert _search(admin_user, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("5678", {"张三", "张伟", "李四"}),  # last four digits of the mobile and the landline
        ("1111", {"张三丰"}),
        ("0000", {"John Smith"}),
        ("13812345678", {"张三"}),
        ("138 1234 5678", {"张三"}),
        ("138-1234-5678", {"张三"}),
        ("+86 138 1234 5678", {"张三"}),
        ("+8613812345678", {"张三"}),
        ("008613812345678", {"张三"}),
        ("(+86) 138-1234-5678", {"张三"}),
        ("１３８１２３４５６７８", {"张三"}),
        ("010-62345678", {"李四"}),
        ("+1 650 253 0000", {"John Smith"}),
        ("13812345679", set()),
        ("1234", set()),  # digits in the middle of a phone do not match
    ],
)
def test_phone_queries(admin_user, people, query, expected):
    assert _search(admin_user, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zhang.san@example.com", {"张三"}),
        ("ZHANG.SAN@EXAMPLE.COM", {"张三"}),
        ("  Zhang.San@Example.com ", {"张三"}),
        ("ｚｈａｎｇ．ｓａｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", {"张三"}),
        ("sanfeng@wudang.cn", {"张三丰"}),
        ("zhang.san", {"张三", "张三丰"}),  # the email prefix, and the pinyin once the dot is dropped
        ("sanf", {"张三丰"}),  # local-part prefixes of three characters or more
        ("zha", {"张三", "张三丰", "张伟"}),  # pinyin prefix of the names, and the email prefix of 张三
        ("jsm", {"John Smith"}),
        ("jsmith", {"John Smith"}),
        ("lisi@example.com", {"李四"}),
        ("lisi@other.com", set()),
        ("nobody@example.com", set()),
        ("js", set()),  # two characters are too few for an email prefix (and match no name)
    ],
)
def test_email_queries(admin_user, people, query, expected):
    assert _search(admin_user, query) == expected


def test_customer_number_queries(admin_user, people):
    customer = people["lisi"]
    number = customer.number
    assert _search(admin_user, number) == {"李四"}
    assert _search(admin_user, number.lower()) == {"李四"}
    assert _search(admin_user, f"  {number} ") == {"李四"}
    assert _search(admin_user, number.rsplit("-", 1)[0]) == {"李四"}  # without the check digit: a prefix
    prefix = number.split("-")[0]  # e.g. C2026: every customer of the year
    assert _search(admin_user, prefix) == {c.display_name for c in people.values()}


def test_archived_customers_are_found_only_when_asked_for(admin_user, people):
    customer_archive(customer=people["zhangsan"], actor=admin_user)
    assert _search(admin_user, "张三") == {"张三丰"}
    assert _search(admin_user, "张三", status="archived") == {"张三"}
    assert _search(admin_user, "张三", status="any") == {"张三", "张三丰"}
    assert _search(admin_user, "13812345678") == set()
    assert _search(admin_user, "13812345678", status="archived") == {"张三"}


def test_search_combines_with_filters(admin_user, people):
    assert _search(admin_user, "张", value_tier="vip") == {"张三"}
    assert _search(admin_user, "5678", value_tier="low") == {"李四"}
    assert _search(admin_user, "张", kind="organization") == set()


def test_search_respects_record_scope(users, people, admin_user):
    sales = users["sales"]
    own = make_customer(sales, display_name="张小明", phones=[{"number": "13611115678"}])
    assert _search(sales, "张") == {own.display_name}
    assert _search(sales, "5678") == {own.display_name}
    assert _search(admin_user, "张小") == {own.display_name}


def test_search_follows_updates(admin_user, people):
    customer_update(
        customer=people["lisi"],
        data=CustomerInput(display_name="王五", phones=[{"number": "13522223333"}]),
        actor=admin_user,
    )
    assert _search(admin_user, "李四") == set()
    assert _search(admin_user, "wangwu") == {"王五"}
    assert _search(admin_user, "3333") == {"王五"}
    assert _search(admin_user, "010-62345678") == set()


@pytest.mark.parametrize("query", ["", "   ", "，；、", "!!!", "%", "'", '"', "\\", "*", "\x00", "_", "\ue000"])
def test_queries_with_nothing_searchable_do_not_narrow(admin_user, people, query):
    assert _search(admin_user, query) == {c.display_name for c in people.values()}


def test_wildcards_and_nul_are_not_patterns(admin_user, people):
    assert _search(admin_user, "z_") == _search(admin_user, "z")
    assert _search(admin_user, "z*") == _search(admin_user, "z")
    assert _search(admin_user, '"张" OR "李"') == set()
    assert _search(admin_user, "张%") == _search(admin_user, "张")
    assert _search(admin_user, "张\x00三") == _search(admin_user, "张三")


def test_index_rebuild_gives_the_same_results(admin_user, people):
    before = _search(admin_user, "zs")
    SearchDocument.objects.all().delete()
    assert _search(admin_user, "zs") == set()
    search_index_rebuild()
    assert _search(admin_user, "zs") == before


def test_no_plaintext_phone_or_email_in_search_documents(admin_user, people):
    # PostgreSQL prints a tsvector's lexemes in quotes.
    tokens = [t.strip("'") for doc in SearchDocument.objects.values_list("tokens", flat=True) for t in doc.split()]
    assert tokens
    hashed = [t for t in tokens if t.startswith(HASH)]
    assert hashed and all(re.fullmatch(HASH + r"[0-9a-f]{16}", t) for t in hashed)
    secrets = [
        "13812345678",
        "8613812345678",
        "1381234",
        "5678",
        "1111",
        "62345678",
        "6502530000",
        "zhang.san",
        "example",
        "wudang",
        "jsmith",
        "corp",
        "sanfeng@",
        "@",
    ]
    # Hashes are random hex, which may contain any short run of digits by chance.
    for token in (t for t in tokens if not t.startswith(HASH)):
        for secret in secrets:
            assert secret not in token, (token, secret)


def test_reindex_command_rebuilds_documents_and_match_keys(admin_user, people, settings):
    settings.CIM_SEARCH_KEY = "another key"
    assert _search(admin_user, "13812345678") == set()  # the stored match keys were made under the old key
    out = io.StringIO()
    call_command("search", "reindex", "--json", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1])["customers"] == len(people)
    assert _search(admin_user, "13812345678") == {"张三"}
    assert _search(admin_user, "5678") == {"张三", "张伟", "李四"}
