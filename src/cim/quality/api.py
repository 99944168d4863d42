"""The data-quality API: likely duplicates (a customer's, and the pairs awaiting review), decisions on pairs,
merges with a dry run that returns the resulting record, and unmerge. Validates and calls services only."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from cim.accounts.roles import Perm, has_perm
from cim.customers.models import Customer
from cim.customers.numbering import is_valid_number, normalize_number
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied
from cim.quality.merge import customer_merge, customer_unmerge, merge_plan
from cim.quality.models import MergeRecord
from cim.quality.selectors import customer_features, duplicate_candidate_list, duplicates_of, external_systems
from cim.quality.services import duplicate_decide
from cim.quality.tasks import duplicates_scan_run

router = Router(tags=["data quality"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


class CustomerRef(Schema):
    number: str
    display_name: str


class DuplicateOut(Schema):
    customer: CustomerRef
    probability: float = Field(description="The matching model's probability that it is the same customer")
    contributions: dict[str, float] = Field(
        description="Each compared field's match weight (log2 Bayes factor): positive for, negative against"
    )


class PairOut(Schema):
    id: int
    customer: CustomerRef
    other: CustomerRef
    reason: str
    status: str
    probability: float | None
    contributions: dict[str, float]
    detected_by: str


class DecisionIn(Schema):
    status: str = Field(pattern="^(open|distinct)$", description="`distinct`: not the same customer")


class ScanIn(Schema):
    train: bool = Field(False, description="Train the model on the customers first (EM)")
    link: list[str] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="Two other systems (of the customers' external ids) whose lists, each holding each person once, "
        "are linked one to one instead of scanning every customer",
    )


class MergeIn(Schema):
    survivor: str = Field(description="The number of the customer that stays")
    duplicates: list[str] = Field(min_length=1, max_length=100, description="Numbers of the customers merged in")
    choices: dict[str, str] = Field(
        default_factory=dict, description="Field → the number of the record whose value the survivor keeps"
    )
    dry_run: bool = Field(False, description="Return the resulting record without merging")


class MergeOut(Schema):
    id: int | None
    survivor: str
    merged: list[str]
    values: dict[str, object] = Field(description="The survivor's values after the merge")
    provenance: dict[str, str] = Field(description="Field → the number of the record its value came from")
    undone: bool = False


def _visible(request, number: str, *, for_change: bool = False) -> Customer:
    return customer_get(user=request.auth, number=number, for_change=for_change)


@router.get("/customers/{number}/duplicates", response=list[DuplicateOut], summary="A customer's likely duplicates")
def customer_duplicates(request, number: str):
    _require(request, Perm.CUSTOMER_VIEW)
    customer = _visible(request, number)
    visible = set(Customer.objects.visible_to(request.auth).values_list("pk", flat=True))
    found = duplicates_of(record=customer_features([customer.pk])[0], exclude_id=customer.pk)
    return [d for d in found if d.customer.pk in visible]


@router.get("/duplicates", response=list[PairOut], summary="Pairs of likely duplicates awaiting review")
def list_pairs(
    request,
    status: str = Query("open", pattern="^(open|distinct|merged)$"),
    limit: int = Query(100, ge=1, le=1000),
):
    _require(request, Perm.CUSTOMER_VIEW)
    return list(duplicate_candidate_list(user=request.auth, status=status)[:limit])


# Before `/duplicates/{pair_id}`, which would otherwise take `scan` for an id.
@router.post("/duplicates/scan", response={202: dict}, summary="Scan every customer for duplicates (background)")
def scan(request, payload: ScanIn | None = None):
    _require(request, Perm.QUALITY_MANAGE)
    payload = payload or ScanIn()
    if payload.link:
        known = set(external_systems())
        if payload.link[0] == payload.link[1]:
            raise ValidationError({"link": [_("Choose two different systems.")]})
        if unknown := [system for system in payload.link if system not in known]:
            raise ValidationError({"link": [_("No customer has an external id of %s.") % ", ".join(unknown)]})
    result = duplicates_scan_run.enqueue(user_id=request.auth.pk, train=payload.train, link=payload.link)
    return Status(202, {"task": str(result.id), "status": str(result.status)})


@router.post("/duplicates/{pair_id}", response=PairOut, summary="Decide on a pair: not the same, or open again")
def decide_pair(request, pair_id: int, payload: DecisionIn):
    _require(request, Perm.CUSTOMER_CHANGE)
    pair = get_object_or_404(duplicate_candidate_list(user=request.auth, status=None), pk=pair_id)
    return duplicate_decide(candidate=pair, status=payload.status, actor=request.auth)


@router.post("/merges", response={200: MergeOut, 201: MergeOut}, summary="Merge customers (or preview with dry_run)")
def merge(request, payload: MergeIn):
    _require(request, Perm.CUSTOMER_MERGE)
    survivor = _visible(request, payload.survivor, for_change=not payload.dry_run)
    duplicates = [_visible(request, number, for_change=not payload.dry_run) for number in payload.duplicates]
    by_number = {c.number: c.pk for c in [survivor, *duplicates]}
    choices = {}
    for name, number in payload.choices.items():
        number = normalize_number(number)
        if not is_valid_number(number) or number not in by_number:
            raise ValidationError({f"choices.{name}": [_("Choose the number of one of the customers merged.")]})
        choices[name] = by_number[number]
    if payload.dry_run:
        plan = merge_plan(survivor=survivor, merged=duplicates, choices=choices)
        return Status(
            200,
            MergeOut(
                id=None,
                survivor=survivor.number,
                merged=[c.number for c in duplicates],
                values=plan.values,
                provenance=plan.provenance,
            ),
        )
    record = customer_merge(survivor=survivor, duplicates=duplicates, actor=request.auth, choices=choices)
    return Status(201, _merge_out(record))


@router.post("/merges/{merge_id}/unmerge", response=MergeOut, summary="Undo a merge exactly")
def unmerge(request, merge_id: int):
    _require(request, Perm.CUSTOMER_MERGE)
    record = get_object_or_404(MergeRecord, pk=merge_id)
    _visible(request, record.survivor.number, for_change=True)
    return _merge_out(customer_unmerge(record=record, actor=request.auth))


def _merge_out(record: MergeRecord) -> MergeOut:
    survivor = Customer.objects.get(pk=record.survivor_id)
    numbers = dict(Customer.objects.filter(pk__in=record.merged_ids).values_list("pk", "number"))
    return MergeOut(
        id=record.pk,
        survivor=survivor.number,
        merged=[numbers[pk] for pk in record.merged_ids],
        values={name: getattr(survivor, name) for name in record.provenance},
        provenance=record.provenance,
        undone=record.undone_at is not None,
    )
