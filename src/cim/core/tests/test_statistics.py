"""The planner's statistics, refreshed by a daily worker job and after the demo load, so that selective rules start
from their index."""

from django.db import connection

from cim.core.schedule import PERIODIC
from cim.core.tasks import database_statistics_refresh
from cim.customers.tests.factories import make_customer


def _analysed_tables() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        else:
            cursor.execute("SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()")
        return {row[0] for row in cursor.fetchall()}


def test_statistics_are_gathered_for_the_customer_tables(admin_user):
    make_customer(admin_user, display_name="王芳")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
        else:
            cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'customers_customer'::regclass")
    database_statistics_refresh()
    assert "customers_customer" in _analysed_tables()


def test_the_worker_runs_it_daily():
    assert PERIODIC["cim.core.tasks.database_statistics"].every.days == 1
