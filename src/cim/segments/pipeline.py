"""The refresh every segment stands on, in the order each step needs the one before: each customer's order
totals and RFM scores, the lifecycle stages, then the segments (dependencies first) and the tags they keep."""

import time
from dataclasses import dataclass, field

from django.utils import timezone

from cim.analytics.lifecycle import lifecycle_refresh
from cim.analytics.scores import scores_refresh
from cim.analytics.totals import order_totals_update, stored_totals
from cim.segments.services import segments_refresh


@dataclass
class RefreshRun:
    totals_summed: int
    scores_changed: int
    stages_changed: int
    segments: int
    changed_members: int
    seconds: dict[str, float] = field(default_factory=dict)


def customer_analytics_refresh(*, actor=None) -> RefreshRun:
    seconds = {}
    started = time.perf_counter()
    as_of = timezone.now()
    # Only the customers whose orders changed are summed again; the stored totals serve scores and stages alike.
    summed = order_totals_update(as_of=as_of)
    seconds["totals"] = time.perf_counter() - started
    started = time.perf_counter()
    totals = stored_totals()
    try:
        scores = scores_refresh(as_of=as_of, totals=totals)
        seconds["scores"] = time.perf_counter() - started
        started = time.perf_counter()
        stages = lifecycle_refresh(actor=actor, as_of=as_of, totals=totals)
        seconds["lifecycle"] = time.perf_counter() - started
    finally:
        totals.close()
    started = time.perf_counter()
    runs = segments_refresh(actor=actor)
    seconds["segments"] = time.perf_counter() - started
    return RefreshRun(
        totals_summed=summed,
        scores_changed=scores.changed,
        stages_changed=stages.changed,
        segments=len(runs),
        changed_members=sum(run.entered + run.left for run in runs),
        seconds=seconds,
    )
