"""Keyword search: a query becomes key look-ups, each an index range scan; several words must all match."""

import hashlib
import operator
import re
from functools import reduce

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from cim.customers.numbering import is_valid_number, normalize_number
from cim.quality.normalize import fold, normalize_email, normalize_phone
from cim.search.keys import EMAIL_PREFIX_MIN, hash_key
from cim.search.models import SearchKey

MAX_TERMS = 5
# Above this many matching keys an alternative of a word is common enough that probing beats collecting
# (see search_filter); measured at 1M customers: collecting wins at 7k matches, probing at 30k.
COMMON_KEYS = 20_000
COMMON_CACHE_SECONDS = 600
_EMAIL_PREFIX = re.compile(r"^[a-z0-9._+-]+$")
# `+` may follow the bracket: "(+86) 138-1234-5678" is a common way to write a number.
_PHONE_LIKE = re.compile(r"^[\d\s()+-]{7,}$")
_SPLIT = re.compile(r"[\s,;，；、]+")
_STRIP = re.compile(r"[^\w@.+-]")


def _text_prefix(term: str) -> Q:
    term = term[:64]
    if connection.vendor == "postgresql":
        # LIKE 'term%' is served by the varchar_pattern_ops index in any database collation.
        return Q(kind=SearchKey.Kind.TEXT, key__startswith=term)
    # SQLite compares text bytewise, so a range on the B-tree is an exact prefix match.
    return Q(kind=SearchKey.Kind.TEXT, key__gte=term, key__lt=term + "\U0010ffff")


def _hashed(kind: str, value: str) -> Q:
    return Q(kind=SearchKey.Kind.HASH, key=hash_key(kind, value))


def term_condition(raw_term: str) -> Q | None:
    """The key condition one query word matches, or None when the word has nothing searchable."""
    if _PHONE_LIKE.match(raw_term):
        try:
            return _hashed("phone", normalize_phone(raw_term))
        except ValidationError:
            pass
    term = _STRIP.sub("", fold(raw_term))
    if not term:
        return None
    if "@" in term:
        try:
            return _hashed("email", normalize_email(term))
        except ValidationError:
            term = term.replace("@", "")
    condition = _text_prefix(term.replace(".", "").replace("+", "").replace("-", "") or term)
    if term.isdigit() and len(term) == 4:
        condition |= _hashed("phone4", term)
    if len(term) >= EMAIL_PREFIX_MIN and _EMAIL_PREFIX.match(term):
        condition |= _hashed("emailp", term[:32])
    upper = normalize_number(raw_term)
    if is_valid_number(upper):
        condition |= _text_prefix(upper.lower())
    return condition


def _is_common(condition: Q) -> bool:
    """Whether at least COMMON_KEYS keys match. Counting costs a few milliseconds for a common word and a
    page and its count ask twice, so the answer is kept for a while: it only picks a plan, never the results."""
    cache_key = "search:common:" + hashlib.sha256(repr(condition).encode()).hexdigest()[:32]
    common = cache.get(cache_key)
    if common is None:
        # Unordered: the model's ordering would sort every match before the limit applies.
        keys = SearchKey.objects.filter(condition).order_by().values("pk")[:COMMON_KEYS]
        common = keys.count() == COMMON_KEYS
        cache.set(cache_key, common, COMMON_CACHE_SECONDS)
    return common


def search_filter(queryset: QuerySet, query: str) -> QuerySet:
    """Narrow a customer queryset to those matching every word of `query`."""
    query = query.strip()
    # A phone number written with spaces is one word, not three.
    terms = [query] if _PHONE_LIKE.match(query) else [t for t in _SPLIT.split(query) if t][:MAX_TERMS]
    for term in terms:
        condition = term_condition(term)
        if condition is None:
            continue
        # One test per alternative of the word (text prefix | phone/email hash): a rare one is collected into a
        # list once, a common one (张, zh, the "sales" of sales@…) is probed per customer in list order, which
        # fills a page after a few hundred probes instead of sorting tens of thousands of matches. Under an OR
        # a probe could not seek into (customer, kind, key); one EXISTS per alternative can.
        alternatives = condition.children if condition.connector == Q.OR else [condition]
        tests = []
        rare = []
        for alternative in alternatives:
            if _is_common(Q(alternative)):
                tests.append(Exists(SearchKey.objects.filter(Q(alternative), customer_id=OuterRef("pk"))))
            else:
                rare.append(alternative)
        if rare:
            keys = SearchKey.objects.filter(reduce(operator.or_, (Q(a) for a in rare)))
            tests.append(Q(pk__in=keys.values("customer_id")))
        queryset = queryset.filter(reduce(operator.or_, tests))
    return queryset
