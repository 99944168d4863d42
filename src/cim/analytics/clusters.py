"""Customer clusters (客户聚类): k-means on what each customer's orders and contacts say, with a plain-language
description of each cluster.

Features, per customer with a counted order: days since the last order, orders, net total spent, average order,
days since the first order, distinct products, distinct categories, the share of the money refunded, and
interactions logged. Counts and money are heavy-tailed, so they are taken as log(1 + x) before standardising;
otherwise a few big buyers would be clusters of their own and everyone else one lump. k is the number from 2 to 8
with the best silhouette on a sample (silhouette costs n² distances); MiniBatchKMeans fits large populations.

A cluster is described by the features whose mean differs most from the whole population's (at least half as
much again, or a third less), in phrases put together when the page is shown, in the reader's language.
"""

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from cim.activities.models import Interaction, Order, OrderLine, Product
from cim.analytics.data import COUNTED, customer_totals, query_table
from cim.analytics.models import Cluster, CustomerScore

K_RANGE = range(2, 9)
SAMPLE = 4000  # customers the silhouette of each k is measured on
LARGE = 50_000  # from this many customers, MiniBatchKMeans
BATCH = 5000
SEED = 0  # the same orders give the same clusters
RATIO = 1.5  # a mean this many times the population's (or 1/RATIO of it) sets a cluster apart
PHRASES_SHOWN = 3

# (key, label, phrase when high, phrase when low): the order of the columns everywhere.
FEATURES = [
    ("recency_days", _("Days since the last order"), _("last bought long ago"), _("bought recently")),
    ("orders", _("Orders"), _("buy often"), _("buy seldom")),
    ("total_spent", _("Total spent"), _("spend a lot"), _("spend little")),
    ("average_order", _("Average order"), _("place large orders"), _("place small orders")),
    ("tenure_days", _("Days since the first order"), _("long-standing customers"), _("new customers")),
    ("products", _("Distinct products"), _("buy many different products"), _("buy few different products")),
    ("categories", _("Distinct categories"), _("shop across categories"), _("keep to few categories")),
    ("refund_share", _("Share refunded"), _("often return purchases"), None),
    ("interactions", _("Interactions"), _("often in touch with us"), _("rarely in touch with us")),
]
KEYS = [key for key, *_rest in FEATURES]
LOGGED = {"recency_days", "orders", "total_spent", "average_order", "tenure_days", "products", "categories",
          "interactions"}  # fmt: skip
ONE_TIME = _("one-time buyers")  # said instead of "buy seldom" when nearly everyone bought once


def _table(name: str) -> str:
    return connection.ops.quote_name(name)


def _features(as_of: datetime) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, one row of FEATURES per customer), customers in id order."""
    until = connection.ops.adapt_datetimefield_value(as_of)
    orders, lines, products = (
        _table(Order._meta.db_table),
        _table(OrderLine._meta.db_table),
        _table(Product._meta.db_table),
    )
    ids = pa.int64()
    con = customer_totals(until=as_of)
    con.register(
        "bought",
        query_table(
            "SELECT o.customer_id, count(DISTINCT l.product_id), "
            "count(DISTINCT CASE WHEN p.category <> '' THEN p.category END) "
            f"FROM {lines} l JOIN {orders} o ON o.id = l.order_id LEFT JOIN {products} p ON p.id = l.product_id "
            "WHERE o.status IN (%s, %s) AND o.ordered_at < %s GROUP BY o.customer_id",
            [*COUNTED, until],
            pa.schema([("customer_id", ids), ("products", ids), ("categories", ids)]),
        ),
    )
    con.register(
        "refunds",
        query_table(
            f"SELECT customer_id, sum(refunded_amount), sum(total_amount) FROM {orders} "
            "WHERE status IN (%s, %s, %s) AND ordered_at < %s GROUP BY customer_id",
            [*COUNTED, Order.Status.REFUNDED, until],
            pa.schema([("customer_id", ids), ("refunded", pa.float64()), ("paid", pa.float64())]),
        ),
    )
    con.register(
        "contacts",
        query_table(
            f"SELECT customer_id, count(*) FROM {_table(Interaction._meta.db_table)} "
            "WHERE occurred_at < %s GROUP BY customer_id",
            [until],
            pa.schema([("customer_id", ids), ("interactions", ids)]),
        ),
    )
    found = con.execute(
        """
        SELECT t.customer_id,
               greatest(date_diff('day', t.last_at, ?::TIMESTAMPTZ), 0) AS recency_days,
               t.orders,
               greatest(t.spent, 0) AS total_spent,
               greatest(t.spent, 0) / t.orders AS average_order,
               greatest(date_diff('day', t.first_at, ?::TIMESTAMPTZ), 0) AS tenure_days,
               coalesce(b.products, 0) AS products,
               coalesce(b.categories, 0) AS categories,
               CASE WHEN r.paid > 0 THEN least(r.refunded / r.paid, 1) ELSE 0 END AS refund_share,
               coalesce(c.interactions, 0) AS interactions
        FROM totals t
        LEFT JOIN bought b USING (customer_id)
        LEFT JOIN refunds r USING (customer_id)
        LEFT JOIN contacts c USING (customer_id)
        ORDER BY t.customer_id
        """,
        [as_of, as_of],
    ).fetchnumpy()
    con.close()
    return found["customer_id"].astype(np.int64), np.column_stack([found[k].astype(float) for k in KEYS])


def _standardised(values: np.ndarray) -> np.ndarray:
    logged = values.copy()
    for index, key in enumerate(KEYS):
        if key in LOGGED:
            logged[:, index] = np.log1p(logged[:, index])
    return StandardScaler().fit_transform(logged)


def _choose_k(points: np.ndarray, rng: np.random.Generator) -> tuple[int, dict[int, float]]:
    """The k of K_RANGE with the best silhouette on a sample, and every k's silhouette."""
    sample = points[rng.choice(len(points), SAMPLE, replace=False)] if len(points) > SAMPLE else points
    distinct = len(np.unique(sample, axis=0))
    scores = {}
    for k in K_RANGE:
        if k >= distinct:  # silhouette needs fewer clusters than distinct customers
            break
        labels = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit_predict(sample)
        scores[k] = round(float(silhouette_score(sample, labels, random_state=SEED)), 4)
    if not scores:
        raise ValidationError({"customers": gettext("Too few customers with orders to form clusters.")})
    return max(scores, key=lambda k: (scores[k], -k)), scores


@dataclass
class ClustersRun:
    customers: int
    k: int
    silhouettes: dict[int, float]  # measured for each k tried; empty when k was given
    computed_at: datetime


def clusters_refresh(*, k: int | None = None, as_of: datetime | None = None) -> ClustersRun:
    """Cluster every customer who bought; replace the clusters and each customer's `CustomerScore.cluster`
    (customers who no longer buy lose theirs). Clusters are numbered by mean spend, 1 the highest."""
    as_of = as_of or timezone.now()
    if k is not None and k not in K_RANGE:
        raise ValidationError({"k": gettext("Choose between 2 and 8 clusters.")})
    customer_ids, values = _features(as_of)
    if len(customer_ids) <= K_RANGE.start:
        raise ValidationError({"customers": gettext("Too few customers with orders to form clusters.")})
    points = _standardised(values)
    if k is None:
        k, silhouettes = _choose_k(points, np.random.default_rng(SEED))
    else:
        silhouettes = {}
        if len(np.unique(points, axis=0)) <= k:
            raise ValidationError({"k": gettext("Fewer distinct customers than clusters.")})
    model = (
        MiniBatchKMeans(n_clusters=k, random_state=SEED, batch_size=4096, n_init=3)
        if len(points) >= LARGE
        else KMeans(n_clusters=k, n_init=10, random_state=SEED)
    )
    labels = model.fit_predict(points)
    means = np.array([values[labels == label].mean(axis=0) for label in range(k)])
    # Number by mean spend: the same kind of customers keep their number across refreshes as far as possible.
    order = np.argsort(-means[:, KEYS.index("total_spent")], kind="stable")
    numbers = np.empty(k, dtype=np.int64)
    numbers[order] = np.arange(1, k + 1)
    population = _rounded(values.mean(axis=0))
    clusters = [
        Cluster(
            number=int(numbers[label]),
            size=int((labels == label).sum()),
            centre=_rounded(means[label]),
            population=population,
            computed_at=as_of,
        )
        for label in range(k)
    ]
    assigned = numbers[labels]
    with transaction.atomic():
        Cluster.objects.all().delete()
        Cluster.objects.bulk_create(sorted(clusters, key=lambda c: c.number))
        CustomerScore.objects.exclude(cluster=None).update(cluster=None)
        for start in range(0, len(customer_ids), BATCH):
            CustomerScore.objects.bulk_create(
                [
                    CustomerScore(customer_id=int(pk), cluster=int(number))
                    for pk, number in zip(
                        customer_ids[start : start + BATCH], assigned[start : start + BATCH], strict=True
                    )
                ],
                update_conflicts=True,
                unique_fields=["customer"],
                update_fields=["cluster"],
                batch_size=BATCH,
            )
    return ClustersRun(customers=len(customer_ids), k=k, silhouettes=silhouettes, computed_at=as_of)


def _rounded(row: np.ndarray) -> dict[str, float]:
    return {key: round(float(value), 4) for key, value in zip(KEYS, row, strict=True)}


def traits(centre: dict[str, float], population: dict[str, float]) -> list[tuple[str, str]]:
    """(feature, "high" or "low") for what sets a cluster apart, the strongest first, at most PHRASES_SHOWN."""
    found = []
    for key, _label, high, low in FEATURES:
        mine, everyone = centre.get(key, 0.0), population.get(key, 0.0)
        if everyone <= 0:
            continue
        # A zero mean against a positive one is as far apart as it gets; cap the log so it still sorts.
        strength = math.log(mine / everyone) if mine > 0 else -10.0
        if strength >= math.log(RATIO) and high is not None:
            found.append((abs(strength), key, "high"))
        elif strength <= -math.log(RATIO) and low is not None:
            found.append((abs(strength), key, "low"))
    found.sort(key=lambda item: -item[0])
    return [(key, direction) for _strength, key, direction in found[:PHRASES_SHOWN]]


def describe(centre: dict[str, float], population: dict[str, float]) -> str:
    """The cluster in one sentence of the active language, e.g. "Spend a lot; buy often; bought recently"."""
    phrases = {key: (high, low) for key, _label, high, low in FEATURES}
    words = []
    for key, direction in traits(centre, population):
        if key == "orders" and direction == "low" and centre.get("orders", 0) < 1.2:
            words.append(str(ONE_TIME))
        else:
            words.append(str(phrases[key][0 if direction == "high" else 1]))
    if not words:
        return gettext("Close to the average customer")
    # Translators: joins the phrases that describe a customer cluster, e.g. "spend a lot; buy often".
    return capfirst(gettext("; ").join(words))


@dataclass
class ClusterSummary:
    number: int
    size: int
    share: float  # of the customers clustered
    description: str
    traits: list[tuple[str, str]]
    centre: dict[str, float]
    population: dict[str, float]


def cluster_list() -> tuple[datetime | None, list[ClusterSummary]]:
    """(when computed, the stored clusters described in the active language)."""
    clusters = list(Cluster.objects.all())
    total = sum(c.size for c in clusters) or 1
    return (
        clusters[0].computed_at if clusters else None,
        [
            ClusterSummary(
                number=c.number,
                size=c.size,
                share=c.size / total,
                description=describe(c.centre, c.population),
                traits=traits(c.centre, c.population),
                centre=c.centre,
                population=c.population,
            )
            for c in clusters
        ],
    )
