"""The customer's timeline: one feed, newest first, merged from every kind of record that has a source here.

Each source reads its own table through an index on (customer, time, id) and returns at most one page of entries
older than the cursor; the feed merges those pages. One query first asks which sources hold anything of the
customer at all, as most customers have records of a few kinds only. Nothing is copied into a timeline table, so
a record appears and disappears with the record itself (an erasure or an unmerge leaves nothing behind), and a
customer with thousands of entries costs one short index range scan per source.

Entries are ordered by (time, kind, id), all descending, so the order is total and stable across pages.
"""

import base64
import binascii
import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, Q, QuerySet
from django.utils.dateparse import parse_datetime

from cim.customers.models import Customer


@dataclass(frozen=True)
class Cursor:
    """The position of an entry in the feed; a page goes on from just after it."""

    at: datetime
    kind: str
    key: int

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.kind}|{self.key}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str | None) -> "Cursor | None":
        """The cursor a page link carries; None for a missing or malformed one (the first page)."""
        if not text:
            return None
        try:
            at, kind, key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split("|")
            moment = parse_datetime(at)
            return cls(moment, kind, int(key)) if moment is not None and moment.tzinfo is not None else None
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # the source's kind: "interaction", "order", "event", "ticket", ...
    key: int  # the record's id within its kind
    title: str
    detail: str = ""
    url: str = ""
    actor: str = ""
    badges: Sequence[str] = field(default_factory=tuple)
    changes: Sequence[tuple[str, str, str]] = field(default_factory=tuple)  # (field, old, new)
    note: str = ""

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.kind, self.key)


# rows(customer_id) → the source's records of one customer.
Rows = Callable[[int], QuerySet]
# fetch(rows=..., before=Cursor | None, limit=...) → the newest `limit` entries of those records before the cursor.
Fetch = Callable[..., Iterable[TimelineEntry]]


@dataclass(frozen=True)
class TimelineSource:
    kind: str
    label: str  # lazily translated, shown in the filter
    rows: Rows
    fetch: Fetch


SOURCES: dict[str, TimelineSource] = {}


def timeline_source(kind: str, label, *, rows: Rows) -> Callable[[Fetch], Fetch]:
    """Register `fetch` as the source of entries of `kind`, made from `rows` (call it at import of the app's
    timeline module)."""

    def register(fetch: Fetch) -> Fetch:
        SOURCES[kind] = TimelineSource(kind=kind, label=label, rows=rows, fetch=fetch)
        return fetch

    return register


def older_than(before: Cursor | None, kind: str, *, at: str, key: str = "pk") -> Q:
    """The filter that keeps a source's rows after `before` in the feed's order (time, kind, id descending)."""
    if before is None:
        return Q()
    earlier = Q(**{f"{at}__lt": before.at})
    if kind < before.kind:
        return earlier | Q(**{at: before.at})
    if kind == before.kind:
        return earlier | Q(**{at: before.at, f"{key}__lt": before.key})
    return earlier


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: Cursor | None
    held: frozenset[str]  # the kinds of record the customer has at all, whatever the page shows


def _newest_first(entry: TimelineEntry):
    return (entry.at, entry.kind, entry.key)


def timeline_page(
    *, customer_id: int, kinds: Iterable[str] | None = None, before: Cursor | None = None, limit: int = 30
) -> TimelinePage:
    """One page of the customer's feed, from the chosen kinds (every kind when None), after `before`."""
    held = customer_holdings(customer_id)
    wanted = [SOURCES[k] for k in (kinds or SOURCES) if k in held]
    pages = [
        sorted(
            source.fetch(rows=source.rows(customer_id), before=before, limit=limit + 1), key=_newest_first, reverse=True
        )
        for source in wanted
    ]
    merged = list(itertools.islice(heapq.merge(*pages, key=_newest_first, reverse=True), limit + 1))
    entries = merged[:limit]
    return TimelinePage(entries, entries[-1].cursor if len(merged) > limit else None, held)


def customer_holdings(customer_id: int) -> frozenset[str]:
    """The kinds of record (the sources' kinds) the customer has any of, in one query: an empty source's own query
    costs as much Python as a full one, and the 360° page skips the cards and sums of kinds the customer lacks."""
    held = {f"holds_{kind}": Exists(source.rows(customer_id)) for kind, source in SOURCES.items()}
    found = Customer.objects.filter(pk=customer_id).values(**held).first() or {}
    return frozenset(kind for kind in SOURCES if found.get(f"holds_{kind}"))
