"""Reads of the privacy app: the current consent of customers, restrictions, requests and registers."""

from collections.abc import Iterable

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from cim.privacy.models import (
    OPEN_REQUEST_STATUSES,
    Consent,
    ConsentPurpose,
    DataSubjectRequest,
    ProcessingRestriction,
)

CHUNK = 10_000  # ids per query: below SQLite's limit on bound parameters, small enough for PostgreSQL's planner


def _chunks(ids: Iterable[int]):
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _latest(queryset: QuerySet) -> QuerySet:
    """The latest row per customer and purpose: a window function, so the database does the work."""
    return queryset.annotate(
        rank=Window(
            RowNumber(), partition_by=[F("customer_id"), F("purpose")], order_by=[F("at").desc(), F("id").desc()]
        )
    ).filter(rank=1)


def consent_holds(customer_ids: Iterable[int], purpose: str) -> set[int]:
    """The ids, among `customer_ids`, whose latest ledger row for `purpose` is a consent (not a withdrawal).

    Set-based for campaigns over hundreds of thousands of customers: one query per 10,000 ids."""
    held: set[int] = set()
    for chunk in _chunks(customer_ids):
        rows = _latest(Consent.objects.filter(purpose=purpose, customer_id__in=chunk).order_by())
        held.update(row["customer_id"] for row in rows.values("customer_id", "granted") if row["granted"])
    return held


def consent_state(*, customer, ledger: list[Consent] | None = None) -> list[dict]:
    """Each purpose with the customer's latest row for it (None when never asked): what the customer page shows.
    `ledger`: the customer's whole ledger, newest first (`consent_ledger`), when the caller has read it already."""
    if ledger is None:
        latest = {c.purpose: c for c in _latest(Consent.objects.filter(customer=customer).order_by())}
    else:
        latest = {}
        for row in ledger:
            latest.setdefault(row.purpose, row)
    return [{"purpose": value, "label": label, "row": latest.get(value)} for value, label in ConsentPurpose.choices]


def consent_ledger(*, customer, limit: int = 100) -> QuerySet[Consent]:
    return Consent.objects.filter(customer=customer).order_by("-at", "-id")[:limit]


def restricted_ids(customer_ids: Iterable[int]) -> set[int]:
    restricted: set[int] = set()
    for chunk in _chunks(customer_ids):
        restricted.update(
            ProcessingRestriction.objects.filter(customer_id__in=chunk).values_list("customer_id", flat=True)
        )
    return restricted


def is_restricted(customer) -> bool:
    return ProcessingRestriction.objects.filter(customer=customer).exists()


def request_list(*, status: str = "", overdue: bool = False, customer=None) -> QuerySet[DataSubjectRequest]:
    qs = DataSubjectRequest.objects.select_related("customer", "handler")
    if status == "open":
        qs = qs.filter(status__in=OPEN_REQUEST_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if overdue:
        qs = qs.filter(status__in=OPEN_REQUEST_STATUSES, due_at__lt=timezone.now())
    if customer is not None:
        qs = qs.filter(customer=customer)
    return qs.order_by("due_at", "id") if status == "open" or overdue else qs


def request_overdue_count() -> int:
    return DataSubjectRequest.objects.filter(status__in=OPEN_REQUEST_STATUSES, due_at__lt=timezone.now()).count()
