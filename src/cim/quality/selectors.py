"""Reads of data quality: the matching model in force, customers as the model sees them, and the likely
duplicates of a record, which every entry path asks for."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from cim.core.blind_index import blind_index
from cim.customers.choices import Status
from cim.customers.models import Address, Customer, Email, ExternalId, Phone
from cim.quality import matching
from cim.quality.models import DuplicateCandidate, MatchModel, MergeRecord

CANDIDATES_PER_KIND = 50
NAMESAKES = 20
BATCH = 20_000


POPULATION_SECONDS = 600


def match_model_current() -> dict:
    """The newest model trained here, or the one CIM ships, applied to this installation's number of customers."""
    latest = MatchModel.objects.order_by("-id").values_list("pk", flat=True).first()
    model = _trained_model(latest) if latest else matching.default_model()
    return matching.for_population(model, cache.get_or_set("quality:population", _population, POPULATION_SECONDS))


@lru_cache(maxsize=2)
def _trained_model(pk: int) -> dict:
    return MatchModel.objects.get(pk=pk).model


def _population() -> int:
    """How many customers there are, to one significant digit: it only scales a prior, and the model's SQL is
    cached per value. Counting a million rows costs more than a duplicate check, so it is kept a while."""
    count = Customer.objects.exclude(status=Status.ARCHIVED).count()
    return int(float(f"{max(count, 1):.1g}"))


def duplicate_threshold() -> float:
    return settings.CIM_DUPLICATE_THRESHOLD


def _feature_rows(customers: QuerySet) -> list[dict]:
    rows = list(
        customers.values_list("pk", "display_name", "family_name", "given_name", "birthday", "gender", "company")
    )
    ids = [row[0] for row in rows]
    contacts: dict[str, dict[int, list[str]]] = {"phones": {}, "emails": {}}
    for kind, model in (("phones", Phone), ("emails", Email)):
        for customer_id, key in model.objects.filter(customer_id__in=ids).values_list("customer_id", "match_key"):
            contacts[kind].setdefault(customer_id, []).append(key)
    addresses = {
        row[0]: row[1:]
        for row in Address.objects.filter(customer_id__in=ids, is_primary=True).values_list(
            "customer_id", "adcode", "postal_code", "city", "street"
        )
    }
    return [
        matching.features(
            unique_id=pk,
            display_name=name,
            family_name=family,
            given_name=given,
            birthday=birthday,
            gender=gender,
            company=company,
            phone_keys=contacts["phones"].get(pk, []),
            email_keys=contacts["emails"].get(pk, []),
            **dict(zip(("adcode", "postal_code", "city", "street"), addresses.get(pk, ("", "", "", "")), strict=True)),
        )
        for pk, name, family, given, birthday, gender, company in rows
    ]


def customer_features(ids: Iterable[int]) -> list[dict]:
    """These customers as the model compares them."""
    ids = list(ids)
    return [
        row
        for start in range(0, len(ids), BATCH)
        for row in _feature_rows(Customer.objects.filter(pk__in=ids[start : start + BATCH]))
    ]


def all_customer_features(*, ids=None) -> Iterator[list[dict]]:
    """Every customer not archived (of `ids`, a queryset of primary keys, when given), as the model compares them,
    in batches."""
    current = Customer.objects.exclude(status=Status.ARCHIVED).order_by("pk")
    if ids is not None:
        current = current.filter(pk__in=ids)
    last = 0
    while batch := _feature_rows(current.filter(pk__gt=last)[:BATCH]):
        yield batch
        last = batch[-1]["unique_id"]


def link_sides(left_system: str, right_system: str) -> tuple[QuerySet, QuerySet]:
    """The customers known to each of two other systems by an external id, as querysets of their primary keys; a
    customer known to both is one person already and is on neither side."""
    left = ExternalId.objects.filter(system=left_system)
    right = ExternalId.objects.filter(system=right_system)
    # NOT EXISTS, not NOT IN: PostgreSQL rescans a NOT IN subquery per row once it outgrows work_mem.
    also_right = Exists(right.filter(customer_id=OuterRef("customer_id")))
    also_left = Exists(left.filter(customer_id=OuterRef("customer_id")))
    return left.exclude(also_right).values("customer_id"), right.exclude(also_left).values("customer_id")


def external_systems() -> list[str]:
    """The other systems customers are known to by an external id, for choosing two lists to link.

    Read by jumping from one system to the next in the (system, value) index: a handful of lookups, where a
    DISTINCT would read an index entry per customer on every load of the duplicates page."""
    table = ExternalId._meta.db_table
    sql = (
        f"with recursive systems(name) as (select min(system) from {table} union all "
        f"select (select min(system) from {table} where system > name) from systems where name is not null) "
        "select name from systems where name is not null"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [name for (name,) in cursor.fetchall()]


def record_features(*, values: dict, contacts: dict, unique_id: int = 0) -> dict:
    """A record about to be saved (`customer_input_clean`'s values and contacts) as the model compares it, plus
    the keyed hash of its ID number (`id_number_key`), which the model does not compare but which names one
    person: a holder of the same ID number is a duplicate whatever the model says."""
    address = next((a for a in contacts.get("addresses", []) if a["is_primary"]), None) or {}
    id_number = values.get("id_number")
    return {
        **_record_features(values, contacts, address, unique_id),
        "id_number_key": blind_index("id_number", id_number) if id_number else "",
    }


def _record_features(values: dict, contacts: dict, address: dict, unique_id: int) -> dict:
    return matching.features(
        unique_id=unique_id,
        display_name=values.get("display_name", ""),
        family_name=values.get("family_name", ""),
        given_name=values.get("given_name", ""),
        birthday=values.get("birthday"),
        gender=values.get("gender", ""),
        company=values.get("company", ""),
        phone_keys=[p["match_key"] for p in contacts.get("phones", [])],
        email_keys=[e["match_key"] for e in contacts.get("emails", [])],
        adcode=address.get("adcode", ""),
        postal_code=address.get("postal_code", ""),
        city=address.get("city", ""),
        street=address.get("street", ""),
    )


def _candidate_ids(record: dict, exclude_id: int | None) -> list[int]:
    """Customers that share a phone, an email or a name key with the record: the pairs the scan's blocking rules
    would bring together too, found through indexes."""
    ids: set[int] = set()
    for model, keys in ((Phone, record["phones"]), (Email, record["emails"])):
        if keys:
            holders = model.objects.filter(match_key__in=keys).order_by().values_list("customer_id", flat=True)
            ids.update(holders[:CANDIDATES_PER_KIND])
    if record["name_key"]:
        # A common name has thousands of holders: those born the same day first, then the most recent.
        namesakes = Customer.objects.filter(match_name=record["name_key"]).order_by("-id").values_list("pk", flat=True)
        if record["birthday"]:
            # The birthday is encrypted; its year and month are not (docs/encryption.md), and the model compares
            # the full dates of the few namesakes born that month.
            born = date.fromisoformat(record["birthday"])
            ids.update(namesakes.filter(birth_year=born.year, birth_month=born.month)[:NAMESAKES])
        ids.update(namesakes[:NAMESAKES])
    ids.discard(exclude_id)
    archived = set(Customer.objects.filter(pk__in=ids, status=Status.ARCHIVED).values_list("pk", flat=True))
    return sorted(ids - archived)


@dataclass
class Duplicate:
    """A likely duplicate of a record: the customer, the model's probability and each field's contribution."""

    customer: Customer
    probability: float
    contributions: dict[str, float]


def duplicates_of(*, record: dict, exclude_id: int | None = None, threshold: float | None = None) -> list[Duplicate]:
    """The customers the model finds likely to be the record's person, most likely first."""
    threshold = duplicate_threshold() if threshold is None else threshold
    record = dict(record)
    id_key = record.pop("id_number_key", "")
    same_id = set()
    if id_key:
        holders = Customer.objects.filter(id_number_key=id_key).exclude(status=Status.ARCHIVED).order_by()
        same_id = set(holders.exclude(pk=exclude_id).values_list("pk", flat=True)[:CANDIDATES_PER_KIND])
    candidates = customer_features(set(_candidate_ids(record, exclude_id)) | same_id)
    scored = {s.other_id: s for s in matching.score(record, candidates, match_model_current())}
    found = {pk: (s.probability, s.contributions) for pk, s in scored.items() if s.probability >= threshold}
    for pk in same_id:
        found[pk] = (1.0, scored[pk].contributions if pk in scored else {})
    customers = Customer.objects.in_bulk(list(found))
    return [
        Duplicate(customers[pk], probability, contributions)
        for pk, (probability, contributions) in sorted(found.items(), key=lambda item: -item[1][0])
    ]


def duplicate_candidate_list(
    *, user, status: str | None = DuplicateCandidate.Status.OPEN
) -> QuerySet[DuplicateCandidate]:
    """The pairs in `status` (any, with None) whose two customers the user may both see, likeliest first. Pairs
    awaiting review leave out customers archived since."""
    visible = Customer.objects.visible_to(user)
    pairs = DuplicateCandidate.objects.filter(customer__in=visible.values("pk"), other__in=visible.values("pk"))
    if status is not None:
        pairs = pairs.filter(status=status)
    if status == DuplicateCandidate.Status.OPEN:
        pairs = pairs.exclude(customer__status=Status.ARCHIVED).exclude(other__status=Status.ARCHIVED)
    return pairs.select_related("customer", "other").order_by(F("probability").desc(nulls_last=True), "-id")


def customer_pairs(*, user, customer: Customer) -> list[DuplicateCandidate]:
    """The pairs awaiting review of a customer the user sees, each with `that`, the other customer: those of
    `duplicate_candidate_list` whose other customer the user sees too. The scope is checked on the few other
    customers only, as most customers have no pair at all."""
    pairs = list(
        DuplicateCandidate.objects.filter(
            Q(customer=customer) | Q(other=customer), status=DuplicateCandidate.Status.OPEN
        )
        .exclude(customer__status=Status.ARCHIVED)
        .exclude(other__status=Status.ARCHIVED)
        .select_related("customer", "other")
        .order_by(F("probability").desc(nulls_last=True), "-id")
    )
    for pair in pairs:
        pair.that = pair.other if pair.customer_id == customer.pk else pair.customer
    if not pairs:
        return []
    others = Customer.objects.visible_to(user).filter(pk__in=[pair.that.pk for pair in pairs])
    visible = set(others.values_list("pk", flat=True))
    return [pair for pair in pairs if pair.that.pk in visible]


def customer_merges(*, customer: Customer) -> list[MergeRecord]:
    """The merges into this customer that can still be undone, newest first."""
    return list(MergeRecord.objects.filter(survivor=customer, undone_at__isnull=True).order_by("-id"))
