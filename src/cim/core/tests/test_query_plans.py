"""The hot pages' queries, each put to PostgreSQL's planner with sequential scans priced out: a query that still
scans a big table has no index that serves it, and at 10M customers it would read them all."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cim.activities.history_schemas import InteractionInput
from cim.activities.interactions import interaction_log
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")

COPIED = re.compile(r"^COPY \((.*)\) TO STDOUT \(FORMAT csv\)$", re.DOTALL)
# Tables that grow with the customers; the rest (users, tags, settings) stay small.
BIG = re.compile(
    r"customers_(customer|phone|email|address|customertag|externalid)|search_\w+|activities_\w+|service_\w+"
    r"|audit_\w+|analytics_customerscore|segments_segmentmember"
)


def _full_reads(node: dict, limited: bool = False) -> list[str]:
    """Scans of a big table that read all of it: sequential, or through an index with nothing to look up and
    no LIMIT above to stop early."""
    limited = limited or node["Node Type"] == "Limit"
    table, kind = node.get("Relation Name", ""), node["Node Type"]
    reads_all = kind == "Seq Scan" or (
        kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node and not limited
    )
    found = [f"{kind} on {table}"] if reads_all and BIG.fullmatch(table) else []
    for child in node.get("Plans", []):
        found += _full_reads(child, limited)
    return found


@pytest.fixture(autouse=True)
def tables_never_analysed(db):
    """ANALYZE writes a table's row count into pg_class in place, so it outlives the rollback of the test that ran
    it (the demo load's, the statistics job's): the planner would then take these tables for the few rows they
    held. The check is about big tables, so it starts them as new ones, inside this test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1, relpages = 0"
            " WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p', 'i')"
        )
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid IN"
            " (SELECT oid FROM pg_class WHERE relnamespace = current_schema()::regnamespace)"
        )


@pytest.fixture
def customers(admin_user):
    made = [
        make_customer(admin_user, display_name=f"客户{n}", phones=[{"number": f"1380013{n:04d}"}]) for n in range(30)
    ]
    interaction_log(
        customer=made[0], data=InteractionInput(kind="call", subject="回访", direction="outbound"), actor=admin_user
    )
    return made


def _scans(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return _big_scans(captured.captured_queries)


def _big_scans(queries: list[dict]) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for query in queries:
                # Analyses read through `COPY (SELECT …) TO STDOUT` (cim.analytics.data): their SELECT is planned.
                sql = COPIED.sub(r"\1", query["sql"].strip())
                if sql.upper().startswith("SELECT"):
                    cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                    plan = cursor.fetchone()[0][0]["Plan"]
                    found += [f"{scan} in: {query['sql'][:300]}" for scan in _full_reads(plan)]
        finally:
            cursor.execute("RESET enable_seqscan")
    return found


@pytest.mark.parametrize(
    "url",
    ["/", "/?q=客户1", "/?q=kh", "/?q=00130005", "/?q=13800130005", "/?status=active&page=2", "CUSTOMER"],
)
def test_hot_pages_find_their_rows_through_indexes(admin_user, customers, url):
    client = Client()
    client.force_login(admin_user)
    if url == "CUSTOMER":
        url = f"/customers/{customers[0].number}/"
    assert _scans(client, url) == []


def test_a_sales_persons_list_uses_the_owner_index(users, customers):
    client = Client()
    client.force_login(users["sales"])
    assert _scans(client, "/") == []


def test_the_check_sees_a_query_no_index_serves(customers):
    with CaptureQueriesContext(connection) as captured:
        list(Customer.objects.filter(notes__contains="VIP"))
    assert len(_big_scans(captured.captured_queries)) == 1


def test_a_list_with_shares_finds_them_through_indexes(users, customers, other_team, admin_user):
    """The shares a team receives (one by one, and through a list's members) are subqueries the planner answers
    from share_team_idx and segment_member_unique, not by reading the customers."""
    from cim.customers.sharing import share_create
    from cim.segments.services import segment_create, segment_members_add

    share_create(actor=admin_user, team=users["sales"].team, customer=customers[1], reason="协作")
    segment = segment_create(actor=admin_user, name="共享名单", kind="static")
    segment_members_add(segment=segment, customer_ids=[c.pk for c in customers[2:5]], actor=admin_user)
    share_create(actor=admin_user, team=users["sales"].team, segment=segment, reason="协作")
    client = Client()
    client.force_login(users["sales"])
    assert _scans(client, "/") == []
    assert _scans(client, "/?shared=1") == []
