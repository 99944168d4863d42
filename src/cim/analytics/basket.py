"""Frequently bought together (关联规则, 购物篮分析) and the product recommendations built on it.

A basket is one counted order's set of catalogue products. Orders, not customers: "bought together" means in one
purchase, and a customer's whole history would tie together things bought years apart and let the heaviest
buyers make every rule. Frequent product sets come from FP-growth (mlxtend) on a sparse basket × product matrix;
a rule X → Y is kept when its confidence reaches the configured minimum and its lift is above 1 (Y is bought with
X more often than without it). Measures, for N baskets:

* support = baskets with X and Y / N
* confidence = support(X ∪ Y) / support(X)
* lift = confidence / support(Y)

A customer's recommendations are the products of rules whose "if bought" products the customer has all bought,
ranked by lift × confidence, then the products most customers buy in the customer's categories; never a
product the customer already has in any order, nor an inactive one.
"""

import functools
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from mlxtend.frequent_patterns import association_rules, fpgrowth
from scipy.sparse import csr_matrix

from cim.activities.models import Order, OrderLine, Product
from cim.analytics.data import COUNTED, query_table
from cim.analytics.models import AssociationRule, PopularProduct

# Rules of up to three products: longer sets are rare in shop baskets and make mining much slower.
MAX_ITEMS = 3
# The strongest rules are kept; past a few thousand no one reads them and recommendations gain nothing.
MAX_RULES = 2000
# Popular products remembered per category for the fallback; more than any list of recommendations needs.
POPULAR_PER_CATEGORY = 50
ID_BATCH = 5000
DIGITS = 6  # measures are stored rounded: the float noise of the division says nothing


@dataclass(frozen=True)
class Thresholds:
    min_support: float
    min_confidence: float

    @classmethod
    def configured(cls) -> "Thresholds":
        return cls(settings.CIM_RULES_MIN_SUPPORT, settings.CIM_RULES_MIN_CONFIDENCE)


@dataclass
class RulesRun:
    baskets: int
    products: int  # distinct products in the baskets
    rules: int
    thresholds: Thresholds
    computed_at: datetime


def _table(name: str) -> str:
    return connection.ops.quote_name(name)


def _baskets() -> pa.Table:
    sql = (
        f"SELECT DISTINCT l.order_id, l.product_id FROM {_table(OrderLine._meta.db_table)} l "
        f"JOIN {_table(Order._meta.db_table)} o ON o.id = l.order_id "
        "WHERE o.status IN (%s, %s) AND l.product_id IS NOT NULL"
    )
    return query_table(sql, list(COUNTED), pa.schema([("order_id", pa.int64()), ("product_id", pa.int64())]))


def rules_refresh(*, min_support: float | None = None, min_confidence: float | None = None) -> RulesRun:
    """Mine the rules from every counted order and replace the stored set; also refresh the popular products."""
    configured = Thresholds.configured()
    thresholds = Thresholds(
        configured.min_support if min_support is None else min_support,
        configured.min_confidence if min_confidence is None else min_confidence,
    )
    if not 0 < thresholds.min_support <= 1:
        raise ValidationError({"min_support": _("Give a share between 0 and 1, e.g. 0.01.")})
    if not 0 < thresholds.min_confidence <= 1:
        raise ValidationError({"min_confidence": _("Give a share between 0 and 1, e.g. 0.2.")})
    now = timezone.now()
    con = duckdb.connect()
    con.register("baskets", _baskets())
    baskets, products = con.execute(
        "SELECT count(DISTINCT order_id), count(DISTINCT product_id) FROM baskets"
    ).fetchone()
    # Only products frequent on their own can be in a frequent set: the matrix keeps just their columns, but a row
    # for every basket, since every basket counts in N.
    least = math.ceil(thresholds.min_support * baskets - 1e-9)
    cells = con.execute(
        """
        WITH frequent AS (
            SELECT product_id FROM baskets GROUP BY product_id HAVING count(*) >= ?
        )
        SELECT dense_rank() OVER (ORDER BY b.order_id) - 1 AS row, b.product_id
        FROM baskets b JOIN frequent USING (product_id)
        """,
        [max(least, 1)],
    ).fetchnumpy()
    con.close()
    found = _mine(cells, baskets, thresholds) if baskets else pd.DataFrame()
    rows = [
        AssociationRule(
            antecedents=rule.antecedents,
            consequents=rule.consequents,
            support=round(float(rule.support), DIGITS),
            confidence=round(float(rule.confidence), DIGITS),
            lift=round(float(rule.lift), DIGITS),
            computed_at=now,
        )
        for rule in found.itertuples()
    ]
    popular = [
        PopularProduct(category=category, product_id=product_id, buyers=buyers, place=place, computed_at=now)
        for category, products in _popular().items()
        for place, (product_id, buyers) in enumerate(products, start=1)
    ]
    with transaction.atomic():
        AssociationRule.objects.all().delete()
        AssociationRule.objects.bulk_create(rows, batch_size=1000)
        PopularProduct.objects.all().delete()
        PopularProduct.objects.bulk_create(popular, batch_size=1000)
    return RulesRun(baskets=baskets, products=products, rules=len(rows), thresholds=thresholds, computed_at=now)


def _mine(cells: dict, baskets: int, thresholds: Thresholds) -> pd.DataFrame:
    """The rules, strongest first, from the (basket row, product id) cells of the frequent products."""
    columns, index = np.unique(cells["product_id"], return_inverse=True)
    if len(columns) < 2:
        return pd.DataFrame()
    matrix = csr_matrix(
        (np.ones(len(index), dtype=bool), (cells["row"].astype(np.int64), index)),
        shape=(baskets, len(columns)),
    )
    with warnings.catch_warnings():
        # pandas 2.3 warns about the bool fill value it picks itself in from_spmatrix; nothing of ours to change.
        warnings.simplefilter("ignore", FutureWarning)
        # Columns are the positions 0…m-1 (mlxtend's sparse input needs that); product ids are put back below.
        onehot = pd.DataFrame.sparse.from_spmatrix(matrix)
    itemsets = fpgrowth(onehot, min_support=thresholds.min_support, use_colnames=True, max_len=MAX_ITEMS)
    if not (itemsets["itemsets"].map(len) > 1).any():
        return pd.DataFrame()
    rules = association_rules(
        itemsets, num_itemsets=baskets, metric="confidence", min_threshold=thresholds.min_confidence
    )
    rules = rules[rules["lift"] > 1].sort_values(["lift", "confidence", "support"], ascending=False).head(MAX_RULES)
    for side in ("antecedents", "consequents"):
        rules[side] = rules[side].map(lambda positions: sorted(int(columns[p]) for p in positions))
    return rules


def _popular() -> dict[str, list[tuple[int, int]]]:
    """Category → [(product id, customers who bought it)], most bought first, active catalogue products only."""
    sql = (
        f"SELECT l.product_id, count(DISTINCT o.customer_id) FROM {_table(OrderLine._meta.db_table)} l "
        f"JOIN {_table(Order._meta.db_table)} o ON o.id = l.order_id "
        "WHERE o.status IN (%s, %s) AND l.product_id IS NOT NULL GROUP BY l.product_id"
    )
    buyers = query_table(sql, list(COUNTED), pa.schema([("product_id", pa.int64()), ("buyers", pa.int64())]))
    con = duckdb.connect()
    con.register("buyers", buyers)
    con.register("catalogue", _catalogue())
    rows = con.execute(
        """
        SELECT category, product_id, buyers FROM (
            SELECT c.category, b.product_id, b.buyers,
                   row_number() OVER (PARTITION BY c.category ORDER BY b.buyers DESC, b.product_id) AS place
            FROM buyers b JOIN catalogue c USING (product_id)
            WHERE c.active AND c.category <> ''
        ) WHERE place <= ? ORDER BY category, place
        """,
        [POPULAR_PER_CATEGORY],
    ).fetchall()
    con.close()
    popular: dict[str, list[tuple[int, int]]] = {}
    for category, product_id, count in rows:
        popular.setdefault(category, []).append((product_id, count))
    return popular


def _catalogue(only: set[int] | None = None) -> pa.Table:
    """(product, category, active) for the whole catalogue, or for the products `only`."""
    rows = Product.objects.values_list("pk", "category", "is_active")
    if only is None:
        found = list(rows.iterator(10_000))
    else:
        wanted = sorted(only)
        found = [
            row
            for start in range(0, len(wanted), ID_BATCH)
            for row in rows.filter(pk__in=wanted[start : start + ID_BATCH])
        ]
    ids, categories, active = [], [], []
    for pk, category, is_active in found:
        ids.append(pk)
        categories.append(category)
        active.append(is_active)
    return pa.table(
        {
            "product_id": pa.array(ids, pa.int64()),
            "category": pa.array(categories, pa.string()),
            "active": pa.array(active, pa.bool_()),
        }
    )


def popular_products(categories: Iterable[str] | None = None) -> dict[str, list[tuple[int, int]]]:
    """Category → [(product id, customers who bought it)], most bought first, as the rules job last counted them."""
    rows = PopularProduct.objects.order_by("category", "place")
    if categories is not None:
        rows = rows.filter(category__in=list(categories))
    popular: dict[str, list[tuple[int, int]]] = {}
    for category, product_id, buyers in rows.values_list("category", "product_id", "buyers"):
        popular.setdefault(category, []).append((product_id, buyers))
    return popular


@dataclass
class Recommendation:
    product_id: int
    sku: str
    name: str
    category: str
    reason: str  # "rule": bought with what the customer bought; "popular": popular in the customer's categories
    score: float  # the rule's lift × confidence; for popular products, the customers who bought it
    because: list[str] = field(default_factory=list)  # names of the rule's "if bought" products


def _owned(customer_ids: list[int]) -> pa.Table:
    """(customer, product, bought in a counted order) for every product in any of the customers' orders."""
    schema = pa.schema([("customer_id", pa.int64()), ("product_id", pa.int64()), ("counted", pa.int64())])
    parts = []
    for start in range(0, len(customer_ids), ID_BATCH):
        chunk = customer_ids[start : start + ID_BATCH]
        sql = (
            "SELECT o.customer_id, l.product_id, max(CASE WHEN o.status IN (%s, %s) THEN 1 ELSE 0 END) "
            f"FROM {_table(OrderLine._meta.db_table)} l JOIN {_table(Order._meta.db_table)} o ON o.id = l.order_id "
            f"WHERE o.customer_id IN ({', '.join(['%s'] * len(chunk))}) AND l.product_id IS NOT NULL "
            "GROUP BY o.customer_id, l.product_id"
        )
        parts.append(query_table(sql, [*COUNTED, *chunk], schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _rule_tables() -> tuple[pa.Table, pa.Table, pa.Table]:
    """The stored rules as (rule, size, score), (rule, if-product) and (rule, then-product) tables."""
    rules, ifs, thens = ([], [], []), ([], []), ([], [])
    for pk, antecedents, consequents, confidence, lift in AssociationRule.objects.values_list(
        "pk", "antecedents", "consequents", "confidence", "lift"
    ):
        for column, value in zip(rules, (pk, len(antecedents), lift * confidence), strict=True):
            column.append(value)
        for product in antecedents:
            ifs[0].append(pk)
            ifs[1].append(product)
        for product in consequents:
            thens[0].append(pk)
            thens[1].append(product)
    return (
        pa.table({"rule_id": pa.array(rules[0], pa.int64()), "size": pa.array(rules[1], pa.int64()),
                  "score": pa.array(rules[2], pa.float64())}),
        pa.table({"rule_id": pa.array(ifs[0], pa.int64()), "product_id": pa.array(ifs[1], pa.int64())}),
        pa.table({"rule_id": pa.array(thens[0], pa.int64()), "product_id": pa.array(thens[1], pa.int64())}),
    )  # fmt: skip


@functools.cache
def _shared_duckdb() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process: opening one costs more (~10 ms) than a customer's recommendations."""
    return duckdb.connect()


def recommendations_for(customer_ids, limit: int = 5) -> dict[int, list[Recommendation]]:
    """Up to `limit` products for each customer, best first; set-based, so a campaign can ask for many customers
    at once. Customers with nothing to recommend are left out."""
    customer_ids = list(dict.fromkeys(int(pk) for pk in customer_ids))
    if not customer_ids or limit < 1:
        return {}
    owned = _owned(customer_ids)
    if not pc.any(pc.equal(owned["counted"], 1)).as_py():
        return {}  # both ways to recommend start from a product bought
    rules, ifs, thens = _rule_tables()
    popular = popular_products()
    # Only the products that can matter: what the customers have, and what rules or popularity could suggest.
    products = set(owned["product_id"].to_pylist()) | set(thens["product_id"].to_pylist())
    products |= {p for items in popular.values() for p, _n in items}
    con = _shared_duckdb().cursor()  # a cursor is a connection of its own, for this call and thread
    con.register("owned", owned)
    con.register("rules", rules)
    con.register("rule_if", ifs)
    con.register("rule_then", thens)
    con.register(
        "popular",
        pa.table(
            {
                "category": pa.array([c for c, items in popular.items() for _i in items], pa.string()),
                "product_id": pa.array([p for items in popular.values() for p, _n in items], pa.int64()),
                "buyers": pa.array([n for items in popular.values() for _p, n in items], pa.int64()),
            }
        ),
    )
    con.register("catalogue", _catalogue(products))
    rows = con.execute(
        """
        WITH fired AS (   -- rules whose every "if" product the customer bought in a counted order
            SELECT o.customer_id, i.rule_id
            FROM rule_if i JOIN owned o ON o.product_id = i.product_id AND o.counted = 1
            JOIN rules r ON r.rule_id = i.rule_id
            GROUP BY o.customer_id, i.rule_id HAVING count(*) = any_value(r.size)
        ),
        by_rule AS (
            SELECT f.customer_id, t.product_id, max(r.score) AS score, arg_max(r.rule_id, r.score) AS rule_id
            FROM fired f JOIN rule_then t USING (rule_id) JOIN rules r USING (rule_id)
            GROUP BY f.customer_id, t.product_id
        ),
        by_category AS (
            SELECT DISTINCT o.customer_id, p.product_id, p.buyers
            FROM owned o JOIN catalogue c USING (product_id) JOIN popular p ON p.category = c.category
            WHERE o.counted = 1
        ),
        candidates AS (   -- a product both a rule and its popularity suggest is there once, for the rule
            SELECT * FROM (
                SELECT customer_id, product_id, 0 AS tier, score, rule_id FROM by_rule
                UNION ALL
                SELECT customer_id, product_id, 1, buyers, NULL FROM by_category
            ) QUALIFY row_number() OVER (PARTITION BY customer_id, product_id ORDER BY tier) = 1
        ),
        ranked AS (
            SELECT x.*, row_number() OVER (
                PARTITION BY x.customer_id ORDER BY x.tier, x.score DESC, x.product_id
            ) AS place
            FROM candidates x JOIN catalogue c USING (product_id)
            ANTI JOIN owned o ON o.customer_id = x.customer_id AND o.product_id = x.product_id
            WHERE c.active
        )
        SELECT customer_id, product_id, tier, score, rule_id FROM ranked WHERE place <= ?
        ORDER BY customer_id, place
        """,
        [limit],
    ).fetchall()
    con.close()
    return _named(rows)


def _named(rows: list[tuple]) -> dict[int, list[Recommendation]]:
    rule_ids = {rule_id for *_rest, rule_id in rows if rule_id is not None}
    because = dict(AssociationRule.objects.filter(pk__in=rule_ids).values_list("pk", "antecedents"))
    wanted = {product_id for _c, product_id, *_rest in rows} | {p for ids in because.values() for p in ids}
    products = {p.pk: p for p in Product.objects.filter(pk__in=wanted).only("pk", "sku", "name", "category")}
    found: dict[int, list[Recommendation]] = {}
    for customer_id, product_id, tier, score, rule_id in rows:
        product = products[product_id]
        found.setdefault(customer_id, []).append(
            Recommendation(
                product_id=product_id,
                sku=product.sku,
                name=product.name,
                category=product.category,
                reason="rule" if tier == 0 else "popular",
                score=round(float(score), 4),
                because=[products[p].name for p in because.get(rule_id, []) if p in products],
            )
        )
    return found


@dataclass
class RuleRow:
    antecedents: list[Product]
    consequents: list[Product]
    support: float
    confidence: float
    lift: float


def rule_list(*, limit: int = 100, offset: int = 0) -> tuple[int, datetime | None, list[RuleRow]]:
    """(rules stored, when computed, the rules from `offset` with their products), strongest first."""
    stored = AssociationRule.objects.all()
    total = stored.count()
    chosen = list(stored[offset : offset + limit])
    ids = {p for rule in chosen for p in (*rule.antecedents, *rule.consequents)}
    products = Product.objects.in_bulk(ids)
    # A product deleted since the rules were mined is shown by its id.
    named = [
        RuleRow(
            antecedents=[products.get(p) or Product(pk=p, sku=str(p), name=f"#{p}") for p in rule.antecedents],
            consequents=[products.get(p) or Product(pk=p, sku=str(p), name=f"#{p}") for p in rule.consequents],
            support=rule.support,
            confidence=rule.confidence,
            lift=rule.lift,
        )
        for rule in chosen
    ]
    return total, stored.values_list("computed_at", flat=True).first(), named
