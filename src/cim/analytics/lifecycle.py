"""Lifecycle stages (客户生命周期) from the orders: potential → new → repeat → loyal, and at risk or churned when
the purchases stop. Refreshed set-based for every customer; each change is audited with the old and new stage,
so it shows on the customer's timeline.

The rule, first match wins, with `n` counted orders and `d` days since the last one:
no orders: potential; d > churned days: churned; d > at-risk days: at risk; n ≥ loyal orders: loyal;
n ≥ 2: repeat; else new.
"""

from dataclasses import dataclass
from datetime import datetime
from statistics import median

import duckdb
import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Coalesce
from django.utils import timezone

from cim.analytics.data import customer_totals, query_table
from cim.analytics.scores import stage_since_set
from cim.audit.services import audit_record_bulk
from cim.automation.events import events_publish
from cim.customers.choices import LifecycleStage
from cim.customers.models import Customer

BATCH = 5000
CURRENT = pa.schema([("customer_id", pa.int64()), ("stage", pa.string())])
FUNNEL = [LifecycleStage.POTENTIAL, LifecycleStage.NEW, LifecycleStage.REPEAT, LifecycleStage.LOYAL]


@dataclass(frozen=True)
class Thresholds:
    loyal_orders: int
    at_risk_days: int
    churned_days: int

    @classmethod
    def configured(cls) -> "Thresholds":
        return cls(
            settings.CIM_LIFECYCLE_LOYAL_ORDERS,
            settings.CIM_LIFECYCLE_AT_RISK_DAYS,
            settings.CIM_LIFECYCLE_CHURNED_DAYS,
        )


def _stage_case(thresholds: Thresholds) -> str:
    """The rule as a DuckDB expression over `orders` (counted orders) and `days` (since the last one)."""
    S = LifecycleStage
    return f"""CASE WHEN coalesce(orders, 0) = 0 OR days IS NULL THEN '{S.POTENTIAL.value}'
        WHEN days > {int(thresholds.churned_days)} THEN '{S.CHURNED.value}'
        WHEN days > {int(thresholds.at_risk_days)} THEN '{S.AT_RISK.value}'
        WHEN orders >= {int(thresholds.loyal_orders)} THEN '{S.LOYAL.value}'
        WHEN orders >= 2 THEN '{S.REPEAT.value}' ELSE '{S.NEW.value}' END"""


def stage_of(orders: int, days_since_last: int | None, thresholds: Thresholds) -> str:
    """The stage of one customer, by the same rule the refresh applies to all."""
    with duckdb.connect() as con:
        [(stage,)] = con.execute(
            f"SELECT {_stage_case(thresholds)} FROM (SELECT ?::BIGINT AS orders, ?::BIGINT AS days)",
            [orders, days_since_last],
        ).fetchall()
    return stage


@dataclass
class LifecycleRun:
    customers: int
    changed: int
    by_stage: dict[str, int]


def lifecycle_refresh(
    *,
    actor=None,
    as_of: datetime | None = None,
    thresholds: Thresholds | None = None,
    totals: duckdb.DuckDBPyConnection | None = None,
) -> LifecycleRun:
    """Give every active customer the stage its orders say; returns how many changed and the count per stage.
    `totals` is a connection from `customer_totals` to reuse (the caller closes it)."""
    as_of = as_of or timezone.now()
    thresholds = thresholds or Thresholds.configured()
    con = totals or customer_totals(until=as_of)
    current = (
        Customer.objects.filter(status="active", merged_into__isnull=True)
        .order_by()
        .values_list("pk", "lifecycle_stage")
    )
    sql, params = current.query.sql_with_params()
    con.register("current", query_table(sql, list(params), CURRENT, replica=False))
    con.execute(
        f"""
        CREATE OR REPLACE TEMPORARY TABLE staged AS
        SELECT c.customer_id, c.stage AS old, {_stage_case(thresholds)} AS new
        FROM current c LEFT JOIN (
            SELECT customer_id, orders, date_diff('day', last_at, ?::TIMESTAMPTZ) AS days FROM totals
        ) t USING (customer_id)
        """,
        [as_of],
    )
    con.unregister("current")
    by_stage = dict(con.execute("SELECT new, count(*) FROM staged GROUP BY new").fetchall())
    changes: dict[str, list[tuple[int, str]]] = {}
    for pk, old, new in con.execute(
        "SELECT customer_id, old, new FROM staged WHERE new <> old ORDER BY customer_id"
    ).fetchall():
        changes.setdefault(new, []).append((pk, old))
    con.execute("DROP TABLE staged")
    if totals is None:
        con.close()
    changed = sum(map(len, changes.values()))
    for new, rows in changes.items():
        for start in range(0, len(rows), BATCH):
            _apply(rows[start : start + BATCH], new, actor, as_of)
    return LifecycleRun(customers=sum(by_stage.values()), changed=changed, by_stage=by_stage)


def _apply(rows: list[tuple[int, str]], new: str, actor, at: datetime) -> None:
    """One batch of customers moving to `new`: the update, and an audit event with the old stage of each."""
    with transaction.atomic():
        Customer.objects.filter(pk__in=[pk for pk, _old in rows]).update(lifecycle_stage=new, updated_at=at)
        stage_since_set(customer_ids=[pk for pk, _old in rows], at=at)
        audit_record_bulk(
            actor=actor,
            action="customer.lifecycle",
            target_type="customers.customer",
            target_ids=[pk for pk, _old in rows],
            fields=["lifecycle_stage"],
            changes={pk: {"lifecycle_stage": (old, new)} for pk, old in rows},
        )
        for old, ids in _ids_by_old_stage(rows).items():
            events_publish("customer.stage_changed", customer_ids=ids, data={"from": old, "to": new})


def _ids_by_old_stage(rows: list[tuple[int, str]]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for pk, old in rows:
        ids.setdefault(old, []).append(pk)
    return ids


def lifecycle_funnel() -> list[tuple[str, str, int, float | None]]:
    """(stage, label, customers at or past it, share of the previous step) along potential → loyal; then the
    at-risk and churned counts (no conversion rate)."""
    counts = dict(
        Customer.objects.filter(status="active", merged_into__isnull=True)
        .values("lifecycle_stage")
        .annotate(n=Count("pk"))
        .values_list("lifecycle_stage", "n")
    )
    lapsed = counts.get(LifecycleStage.AT_RISK, 0) + counts.get(LifecycleStage.CHURNED, 0)
    rows, previous = [], None
    for index, stage in enumerate(FUNNEL):
        # Customers who reached a stage: those in it or further along; lapsed customers had bought at least once.
        reached = sum(counts.get(s, 0) for s in FUNNEL[index:]) + (lapsed if index <= 1 else 0)
        rows.append((stage.value, str(stage.label), reached, reached / previous if previous else None))
        previous = reached
    for stage in (LifecycleStage.AT_RISK, LifecycleStage.CHURNED):
        rows.append((stage.value, str(stage.label), counts.get(stage, 0), None))
    return rows


def lifecycle_days_in_stage(*, as_of: datetime | None = None) -> dict[str, float]:
    """The median number of days the customers now at each stage have been there (since they entered it, or since
    they were created when they never moved)."""
    as_of = as_of or timezone.now()
    since = (
        Customer.objects.filter(status="active", merged_into__isnull=True)
        .annotate(since=Coalesce("score__stage_since", "created_at"))
        .values_list("lifecycle_stage", "since")
    )
    days: dict[str, list[float]] = {}
    for stage, start in since.iterator(chunk_size=BATCH):
        days.setdefault(stage, []).append((as_of - start).total_seconds() / 86400)
    return {stage: round(median(values), 1) for stage, values in days.items()}
