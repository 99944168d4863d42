"""Keyword search: a query becomes one index match (every word, each an OR of its readings) plus exact look-ups
of whole phone numbers, emails and customer numbers on their own indexed columns."""

from django.db import connection
from django.db.models import F, QuerySet

from cim.core.blind_index import blind_index
from cim.customers.models import Email, Phone
from cim.customers.numbering import scheme_get
from cim.search.tokens import Node, Token, search_plan


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


def search_filter(queryset: QuerySet, query: str) -> QuerySet:
    """Narrow a customer queryset to those matching every word of `query`. When the index is used, the rows carry
    `search_rowid`, the customer id as the index holds it: ordering by it lets SQLite read matches in order and
    stop after a page, where ordering by the customer's own id would sort every match first."""
    plan = search_plan(query, scheme_prefix=scheme_get().prefix)
    if plan.match:
        render = tsquery_expression if connection.vendor == "postgresql" else fts5_expression
        queryset = queryset.filter(search_document__tokens__match=render(plan.match)).annotate(
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
