"""Every write of data quality: training the matching model, scanning for duplicates, flagging the likely
duplicates of a new customer, and a person's decision on a pair."""

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from cim.audit.services import audit_record
from cim.core.replica import replica_reads
from cim.customers.choices import Status
from cim.customers.models import Customer, ExternalId
from cim.quality import matching
from cim.quality.models import DuplicateCandidate, MatchModel
from cim.quality.selectors import (
    all_customer_features,
    duplicate_threshold,
    link_sides,
    match_model_current,
)

CLUSTER_COLUMNS = ["cluster_id", "customer_number", "external_id", "match_probability"]
# Below this many customers EM has too few pairs to learn from; the shipped model is better.
MIN_TRAINING_CUSTOMERS = 1_000


def _features_table(progress: Callable[[int], None] | None = None, ids=None):
    import pyarrow as pa

    batches = []
    for batch in all_customer_features(ids=ids):
        batches.append(pa.Table.from_pylist(batch))
        if progress:
            progress(len(batch))
    return pa.concat_tables(batches) if batches else None


def match_model_train(*, actor, progress: Callable[[int], None] | None = None) -> MatchModel | None:
    """Train the model on this installation's customers (unsupervised); None when there are too few."""
    table = _features_table(progress)
    if table is None or table.num_rows < MIN_TRAINING_CUSTOMERS:
        return None
    model = matching.train(table, version=f"{timezone.now():%Y%m%d%H%M%S}")
    saved = MatchModel.objects.create(model=model, customers=table.num_rows, created_by=_user(actor))
    audit_record(actor=actor, action="quality.model_train", target=saved, note=f"{table.num_rows} customers")
    return saved


@dataclass
class ScanResult:
    customers: int
    pairs: int
    clusters: int
    seconds: float
    merged: int = 0


def duplicates_scan(
    *,
    actor,
    threshold: float | None = None,
    clusters_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    engine: str | None = None,
    spark_master: str | None = None,
    link: tuple[str, str] | None = None,
) -> ScanResult:
    """Score every pair of customers the blocking rules bring together; record those at `threshold` or above as
    pairs awaiting review (pairs a person decided stay decided), and optionally write the clusters to a CSV.
    The model runs on `engine` (CIM_DEDUPE_ENGINE by default): DuckDB here, or Spark at `spark_master`
    (CIM_SPARK_MASTER by default).

    With `link`, two other systems' names (external ids), only the customers of those two lists are scanned, each
    list taken to hold each person once: a customer of one is paired with at most one of the other
    (`matching.link_one_to_one`)."""
    started = time.monotonic()
    threshold = duplicate_threshold() if threshold is None else threshold
    if link and threshold <= 0.5:
        raise ValueError("a one-to-one link needs a threshold above 0.5")
    sides = link_sides(*link) if link else None
    with replica_reads():
        if sides:
            left_ids = set(sides[0].values_list("customer_id", flat=True))
            table = _features_table(
                progress, ids=Customer.objects.filter(Q(pk__in=sides[0]) | Q(pk__in=sides[1])).values("pk")
            )
        else:
            table = _features_table(progress)
    if table is None:
        return ScanResult(0, 0, 0, time.monotonic() - started)
    model = match_model_current()
    # A one-to-one link weighs each pair against the record's other candidates, however unlikely: all are scored.
    floor = min(threshold, model["probability_two_random_records_match"]) if link else threshold
    if (engine or settings.CIM_DEDUPE_ENGINE) == "spark":
        from cim.quality import spark

        master = spark_master or settings.CIM_SPARK_MASTER
        pairs, clusters = spark.predict(table, model, threshold=floor, master=master)
    else:
        pairs, clusters = matching.predict(table, model, threshold=floor, cluster=not link)
    if link:
        left_ids &= set(table.column("unique_id").to_pylist())
        pairs, clusters = matching.link_one_to_one(
            pairs, left_ids, right_count=table.num_rows - len(left_ids), model=model, threshold=threshold
        )
    found = _pairs_from(pairs)
    # Customers with the same ID number are one person whatever the model says: recorded for review, never merged
    # automatically (the model did not compare them).
    recorded = found if link else {**_same_id_number_pairs(), **found}
    with transaction.atomic():
        # Open pairs the model no longer finds go; those it finds again keep where they were first found.
        open_pairs = DuplicateCandidate.objects.filter(
            status=DuplicateCandidate.Status.OPEN, reason=DuplicateCandidate.Reason.MODEL
        ).values_list("pk", "customer_id", "other_id")
        if link:
            # A link speaks only for the pairs across its two lists.
            right_ids = set(table.column("unique_id").to_pylist()) - left_ids
            open_pairs = [
                (pk, left, right)
                for pk, left, right in open_pairs
                if {left, right} & left_ids and {left, right} & right_ids
            ]
        gone = [pk for pk, left, right in open_pairs if (right, left) not in recorded and (left, right) not in recorded]
        for start in range(0, len(gone), 5000):
            DuplicateCandidate.objects.filter(pk__in=gone[start : start + 5000]).delete()
        DuplicateCandidate.objects.bulk_create(
            [
                DuplicateCandidate(
                    customer_id=max(left, right),
                    other_id=min(left, right),
                    reason=DuplicateCandidate.Reason.MODEL,
                    detected_by="scan",
                    probability=probability,
                    contributions=contributions,
                )
                for (left, right), (probability, contributions) in recorded.items()
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        audit_record(
            actor=actor,
            action="quality.duplicates_scan",
            target=None,
            target_type="customers.customer",
            note=f"{table.num_rows} customers, {len(recorded)} pairs"
            + (f", {link[0]} linked with {link[1]}" if link else ""),
        )
    merged = _merge_automatically(found)
    if clusters_path is not None:
        _write_clusters(clusters, found, clusters_path)
    return ScanResult(table.num_rows, len(recorded), _cluster_count(clusters), time.monotonic() - started, merged)


def _same_id_number_pairs() -> dict[tuple[int, int], tuple[float, dict]]:
    """Pairs of current customers sharing an ID number, found through its keyed hash (the number is encrypted)."""
    shared = (
        Customer.objects.exclude(status=Status.ARCHIVED)
        .exclude(id_number_key="")
        .values("id_number_key")
        .annotate(holders=Count("pk"))
        .filter(holders__gt=1)
        .values("id_number_key")
    )
    groups: dict[str, list[int]] = {}
    rows = Customer.objects.exclude(status=Status.ARCHIVED).filter(id_number_key__in=shared).order_by("pk")
    for pk, key in rows.values_list("pk", "id_number_key"):
        groups.setdefault(key, []).append(pk)
    return {(right, left): (1.0, {}) for ids in groups.values() for left, right in combinations(ids, 2)}


def _merge_automatically(found: dict) -> int:
    """With CIM_AUTO_MERGE_THRESHOLD set (it is not by default), merge each pair at or above it: the later record
    into the earlier, likeliest pairs first, each customer at most once per scan. Merges are undoable as any."""
    from cim.quality.merge import customer_merge

    threshold = settings.CIM_AUTO_MERGE_THRESHOLD
    if threshold is None:
        return 0
    touched: set[int] = set()
    merged = 0
    for (left, right), (probability, _c) in sorted(found.items(), key=lambda item: -item[1][0]):
        if probability < threshold or left in touched or right in touched:
            continue
        survivor, duplicate = Customer.objects.get(pk=min(left, right)), Customer.objects.get(pk=max(left, right))
        try:
            customer_merge(survivor=survivor, duplicates=[duplicate], actor=None)
        except ValidationError:
            continue  # archived or merged since the scan read it
        touched |= {left, right}
        merged += 1
    return merged


def _pairs_from(pairs) -> dict[tuple[int, int], tuple[float, dict]]:
    rows = pairs.select(
        ["unique_id_l", "unique_id_r", "match_probability", *[f"mw_{c}" for c in matching.COMPARISONS]]
    ).to_pylist()
    tf = {c for c in matching.COMPARISONS if f"mw_tf_adj_{c}" in pairs.column_names}
    adjust = pairs.select([f"mw_tf_adj_{c}" for c in sorted(tf)]).to_pylist() if tf else [{}] * len(rows)
    return {
        (row["unique_id_l"], row["unique_id_r"]): (
            round(row["match_probability"], 6),
            {c: round(row[f"mw_{c}"] + extra.get(f"mw_tf_adj_{c}", 0.0), 2) for c in matching.COMPARISONS},
        )
        for row, extra in zip(rows, adjust, strict=True)
    }


def _cluster_count(clusters) -> int:
    sizes: dict = {}
    for cluster_id in clusters.column("cluster_id").to_pylist():
        sizes[cluster_id] = sizes.get(cluster_id, 0) + 1
    return sum(1 for size in sizes.values() if size > 1)


def _write_clusters(clusters, found: dict, path: Path) -> None:
    """Every customer that falls in a cluster of two or more, with its best match probability in it."""
    best: dict[int, float] = {}
    for (left, right), (probability, _c) in found.items():
        best[left] = max(best.get(left, 0.0), probability)
        best[right] = max(best.get(right, 0.0), probability)
    members: dict[str, list[int]] = {}
    for cluster_id, unique_id in zip(
        clusters.column("cluster_id").to_pylist(), clusters.column("unique_id").to_pylist(), strict=True
    ):
        members.setdefault(str(cluster_id), []).append(unique_id)
    ids = [i for group in members.values() if len(group) > 1 for i in group]
    numbers = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "number"))
    external = dict(ExternalId.objects.filter(customer_id__in=ids).order_by("-id").values_list("customer_id", "value"))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CLUSTER_COLUMNS)
        for cluster_id, group in members.items():
            if len(group) > 1:
                for customer_id in sorted(group):
                    writer.writerow(
                        [cluster_id, numbers[customer_id], external.get(customer_id, ""), best[customer_id]]
                    )


def duplicates_record(*, customer: Customer, duplicates: list, detected_by: str) -> list[DuplicateCandidate]:
    """Record `duplicates` (from `duplicates_of`) of a customer as pairs awaiting review."""
    flags = [
        DuplicateCandidate(
            customer_id=max(customer.pk, found.customer.pk),
            other_id=min(customer.pk, found.customer.pk),
            reason=DuplicateCandidate.Reason.MODEL,
            detected_by=detected_by[:60],
            probability=round(found.probability, 6),
            contributions=found.contributions,
        )
        for found in duplicates
        if found.customer.pk != customer.pk
    ]
    return DuplicateCandidate.objects.bulk_create(flags, ignore_conflicts=True)


def duplicate_decide(*, candidate: DuplicateCandidate, status: str, actor) -> DuplicateCandidate:
    """A person says the pair is not the same customer (`distinct`), or was merged (`merged`)."""
    if candidate.status == status:
        return candidate
    candidate.status = status
    candidate.decided_by = _user(actor)
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at"])
    audit_record(actor=actor, action=f"quality.duplicate_{status}", target=candidate, fields=["status"])
    return candidate


def _user(actor):
    return actor if actor is not None and actor.is_authenticated else None
