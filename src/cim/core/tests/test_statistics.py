"""SQLite's planner statistics, refreshed by a daily worker job, so that selective rules start from their index."""

import pytest
from django.db import connection

from cim.core.schedule import PERIODIC
from cim.core.tasks import database_statistics_refresh
from cim.customers.tests.factories import make_customer

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's autovacuum analyses tables")


def test_statistics_are_gathered_for_the_customer_tables(admin_user):
    make_customer(admin_user, display_name="王芳")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
        database_statistics_refresh()
        cursor.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        tables = {row[0] for row in cursor.fetchall()}
    assert "customers_customer" in tables


def test_the_worker_runs_it_daily():
    assert PERIODIC["cim.core.tasks.database_statistics"].every.days == 1
