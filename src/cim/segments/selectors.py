"""Reads of segments, shared by the pages, the API and the CLI."""

from django.db.models import QuerySet
from django.http import Http404

from cim.customers.models import Customer
from cim.segments.models import Segment
from cim.segments.rules import rules_condition, rules_validate
from cim.segments.services import current_customers


def segment_list(*, kind: str | None = None) -> QuerySet[Segment]:
    segments = Segment.objects.select_related("tag")
    return segments.filter(kind=kind) if kind else segments


def segment_get(*, pk: int) -> Segment:
    try:
        return Segment.objects.select_related("tag").get(pk=pk)
    except Segment.DoesNotExist:
        raise Http404 from None


def segment_preview(*, user, rules, segment_id: int | None = None, sample: int = 10) -> tuple[int, list[Customer]]:
    """How many current customers the rules hold, and the first few of them the user may see."""
    condition = rules_condition(rules_validate(rules, segment_id=segment_id))
    matching = current_customers().filter(condition)
    visible = matching.filter(pk__in=Customer.objects.visible_to(user).values("pk")).order_by("-pk")[:sample]
    return matching.count(), list(visible)
