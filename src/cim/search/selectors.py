"""Keyword search: a query becomes one index match (every word, each an OR of its readings) plus exact look-ups
of whole phone numbers, emails and customer numbers on their own indexed columns."""

import math

from django.db import connection
from django.db.models import F, QuerySet, Value
from django.db.models.expressions import CombinedExpression

from cim.core.blind_index import blind_index
from cim.customers.models import Email, Phone
from cim.customers.numbering import scheme_get
from cim.search.tokens import Node, Token, search_plan

# PostgreSQL's plan for a word follows how many of the EDGE_ROWS_PER_ROOT·√n rows at the end of the index where a
# walk begins match it (see `_tsquery_filter`). The thresholds were measured at 1M customers (bench/RESULTS.md); with
# the edge growing as √n, the rows a walk reads and the matches the index hands over grow alike, so they should hold
# at other sizes.
EDGE_ROWS_PER_ROOT = 5
WALK_MATCHES = 8  # from here a page is found sooner by walking the row ids than by sorting the index's matches
COMMON_MATCHES = 150  # from here a capped count is sooner done row by row than from the index


def fts5_expression(node: Node) -> str:
    """SQLite FTS5 query syntax: "token", "prefix"*, AND, OR. Tokens never hold a quote (see tokens)."""
    parts = [
        f'"{item.text}"' + ("*" if item.prefix else "") if isinstance(item, Token) else fts5_expression(item)
        for item in node.items
    ]
    return "(" + f" {node.op.upper()} ".join(parts) + ")"


def tsquery_expression(node: Node) -> str:
    """PostgreSQL tsquery syntax: 'token', 'prefix':*, &, |."""
    parts = [
        f"'{item.text}'" + (":*" if item.prefix else "") if isinstance(item, Token) else tsquery_expression(item)
        for item in node.items
    ]
    return "(" + (" & " if node.op == "and" else " | ").join(parts) + ")"


def search_filter(queryset: QuerySet, query: str, *, newest_first: bool = True) -> QuerySet:
    """Narrow a customer queryset to those matching every word of `query`. When the index is used, the rows carry
    `search_rowid`, the customer id as the index holds it: ordering by it (newest first, or not) reads matches in
    order and stops after a page where the data allows, where ordering by the customer's own id would sort every
    match first."""
    plan = search_plan(query, scheme_prefix=scheme_get().prefix)
    if plan.match:
        if connection.vendor == "postgresql":
            queryset = _tsquery_filter(queryset, tsquery_expression(plan.match), newest_first=newest_first)
        else:  # FTS5 reads matches in row id order and stops after a page
            queryset = queryset.filter(search_document__tokens__match=fts5_expression(plan.match)).annotate(
                search_rowid=F("search_document__customer_id")
            )
    for e164 in plan.phones:
        phones = Phone.objects.filter(match_key=blind_index("phone", e164)).order_by()
        queryset = queryset.filter(pk__in=phones.values("customer_id"))
    for address in plan.emails:
        emails = Email.objects.filter(match_key=blind_index("email", address)).order_by()
        queryset = queryset.filter(pk__in=emails.values("customer_id"))
    for id_number in plan.id_numbers:
        queryset = queryset.filter(id_number_key=blind_index("id_number", id_number))
    for prefix in plan.number_prefixes:
        if connection.vendor == "sqlite":
            # SQLite's LIKE ignores case and so its indexes; text compares bytewise, so a range is the prefix.
            queryset = queryset.filter(number__gte=prefix, number__lt=prefix + "\U0010ffff")
        else:
            queryset = queryset.filter(number__startswith=prefix)
    return queryset


def _tsquery_filter(queryset: QuerySet, expression: str, *, newest_first: bool) -> QuerySet:
    """PostgreSQL cannot estimate how many rows a prefix word (`'徐晨':*`) matches: it guesses a thousand for `陈`
    (3 % of a million customers) and for `徐晨` (99 of them) alike. For a page it then walks the primary key from
    the newest row and tests each, quick for `陈` and 280,000 rows for `徐晨`; to count, it reads every match from
    the GIN index, 32,000 rows for `陈`. So the density is measured here, and the query written so that the planner
    can only take the plan that suits it:
    - WALK_MATCHES at the edge, and the walk finds a page within a few times the edge's rows; fewer, and ordering
      by `search_rowid + 0` hides the order from the planner, which reads the matches from the index and sorts
      them, to show a page and to count (`search_count_order`);
    - COMMON_MATCHES at the edge, and the match is written as one the GIN index cannot serve (`tokens || ''`),
      tested row by row: the walk reaches the count's cap before the index has handed over every match."""
    matches = _edge_matches(expression, newest_first=newest_first)
    lookup = "search_document__tokens__match_each" if matches >= COMMON_MATCHES else "search_document__tokens__match"
    rowid = F("search_document__customer_id")
    return queryset.filter(**{lookup: expression}).annotate(
        search_rowid=rowid if matches >= WALK_MATCHES else rowid + Value(0)
    )


def search_count_order(queryset: QuerySet) -> tuple[str, ...]:
    """The order in which to count a customer queryset up to a cap. Unordered, the planner would count a rare word
    by walking both tables' primary keys when it guesses the word common (`cengz`, an OR of 40 prefixes: 2.6 s to
    find 94 matches); ordered by the hidden key, it reads the matches from the GIN index, as for the page."""
    rowid = queryset.query.annotations.get("search_rowid")
    return ("search_rowid",) if isinstance(rowid, CombinedExpression) else ()


def _edge_rows(indexed: float) -> int:
    """How many rows at one end of an index of `indexed` rows to test: 5·√n (5,000 of a million), so that the walk
    for a page and the GIN index's read of a rarer word both cost about √n rows, the least for both."""
    return max(1000, int(EDGE_ROWS_PER_ROOT * math.sqrt(max(indexed, 0))))


def _edge_matches(expression: str, *, newest_first: bool) -> int:
    """How many of the newest (or oldest) rows of the index match: the subquery's LIMIT keeps the planner from
    reaching past them for the GIN index (1–12 ms for 5,000 rows, by the number of readings the words have)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'search_document'::regclass")
        edge = _edge_rows(cursor.fetchone()[0])
        order = "DESC" if newest_first else "ASC"
        cursor.execute(
            f"SELECT count(*) FROM (SELECT tokens FROM search_document ORDER BY rowid {order} LIMIT %s) edge "
            "WHERE tokens @@ (%s)::tsquery",
            [edge, expression],
        )
        return cursor.fetchone()[0]
