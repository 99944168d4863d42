"""Data-quality scores: how complete and how trustworthy the customer data is, per field, per source channel and
per month of creation, and per customer. Reads only, set-based (one aggregate query per view)."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Sum, When
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.customers.choices import Kind, Status
from cim.customers.models import Address, Customer, Email, Phone

REPORT_SECONDS = 600
# Field → (label, what counts as filled, as a condition on customers and as a test of one customer loaded with its
# contact points). Contact points count when the customer has at least one.
FIELDS = {
    "phones": (_("Phone"), Exists(Phone.objects.filter(customer=OuterRef("pk"))), lambda c: bool(c.phones.all())),
    "emails": (_("Email"), Exists(Email.objects.filter(customer=OuterRef("pk"))), lambda c: bool(c.emails.all())),
    "addresses": (
        _("Address"),
        Exists(Address.objects.filter(customer=OuterRef("pk"))),
        lambda c: bool(c.addresses.all()),
    ),
    "birthday": (
        _("Birthday"),
        Q(birthday__isnull=False) | Q(kind=Kind.ORGANIZATION),
        lambda c: c.birthday is not None or c.kind == Kind.ORGANIZATION,
    ),
    "gender": (
        _("Gender"),
        ~Q(gender__in=["", "unknown"]) | Q(kind=Kind.ORGANIZATION),
        lambda c: c.gender not in ("", "unknown") or c.kind == Kind.ORGANIZATION,
    ),
    "source_channel": (_("Source channel"), ~Q(source_channel=""), lambda c: c.source_channel != ""),
    "owner": (_("Owner"), Q(owner__isnull=False), lambda c: c.owner_id is not None),
    "customer_type": (_("Customer type"), ~Q(customer_type=""), lambda c: c.customer_type != ""),
}
# Values people confirmed or the rules recognised, among those present.
VALIDITY = {
    "phones": (_("Phones verified"), Phone, Q(is_verified=True)),
    "emails": (_("Emails verified"), Email, Q(is_verified=True)),
    "addresses": (_("Chinese addresses placed in a district"), Address.objects.filter(country="CN"), ~Q(adcode="")),
}


def _filled(condition) -> Sum:
    return Sum(Case(When(condition, then=1), default=0, output_field=IntegerField()))


def _aggregate(customers: QuerySet, group_by: str | None = None) -> list[dict]:
    sums = {f"filled_{name}": _filled(condition) for name, (_label, condition, _test) in FIELDS.items()}
    if group_by:
        return list(customers.values(group_by).annotate(customers=Count("pk"), **sums).order_by(group_by))
    return [customers.aggregate(customers=Count("pk"), **sums)]


def _share(row: dict) -> dict[str, float]:
    total = row["customers"] or 0
    return {name: (row[f"filled_{name}"] or 0) / total if total else 0.0 for name in FIELDS}


def _score(shares: dict[str, float]) -> float:
    return sum(shares.values()) / len(shares) if shares else 0.0


def quality_report() -> dict:
    """Completeness of the customers not archived: per field (worst first), per source channel (worst first),
    per month of creation over the last year, and the validity of contact points. Kept for a few minutes: it
    reads every customer."""
    return cache.get_or_set("quality:report", _report, REPORT_SECONDS)


def _report() -> dict:
    current = Customer.objects.exclude(status=Status.ARCHIVED).order_by()
    overall = _aggregate(current)[0]
    shares = _share(overall)
    fields = sorted(
        ({"name": name, "label": str(FIELDS[name][0]), "share": share} for name, share in shares.items()),
        key=lambda row: row["share"],
    )
    sources = sorted(
        (
            {"source": row["source_channel"], "customers": row["customers"], "score": _score(_share(row))}
            for row in _aggregate(current, "source_channel")
        ),
        key=lambda row: row["score"],
    )
    since = timezone.now() - timedelta(days=365)
    months = _aggregate(current.filter(created_at__gte=since).annotate(month=TruncMonth("created_at")), "month")
    validity = []
    for name, (label, rows, condition) in VALIDITY.items():
        rows = rows if isinstance(rows, QuerySet) else rows.objects.all()
        counts = rows.filter(customer__in=current).aggregate(all=Count("pk"), good=_filled(condition))
        validity.append(
            {
                "name": name,
                "label": str(label),
                "count": counts["all"],
                "share": (counts["good"] or 0) / counts["all"] if counts["all"] else 0.0,
            }
        )
    return {
        "customers": overall["customers"],
        "score": _score(shares),
        "fields": fields,
        "sources": sources,
        "trend": [
            {"month": row["month"].strftime("%Y-%m"), "customers": row["customers"], "score": _score(_share(row))}
            for row in months
        ],
        "validity": validity,
        "at": timezone.now(),
    }


def customer_completeness(customer: Customer) -> tuple[float, list[str]]:
    """One customer's completeness (0–1) and the labels of what it lacks, from the customer as loaded: prefetch its
    phones, emails and addresses, or each is a query."""
    filled = {name: test(customer) for name, (_label, _condition, test) in FIELDS.items()}
    return _score({name: float(ok) for name, ok in filled.items()}), [
        str(FIELDS[name][0]) for name, ok in filled.items() if not ok
    ]


def review_due_before():
    """Customers last reviewed before this (or never) are due for their periodic review (定期核对)."""
    return timezone.now() - timedelta(days=30 * settings.CIM_REVIEW_MONTHS)


def review_queue(*, user) -> QuerySet[Customer]:
    """The customers the user may see that are due for review, those never reviewed first, then the longest ago."""
    due = Q(reviewed_at__isnull=True) | Q(reviewed_at__lt=review_due_before())
    return (
        Customer.objects.visible_to(user)
        .exclude(status=Status.ARCHIVED)
        .filter(due)
        .select_related("owner")
        .order_by(F("reviewed_at").asc(nulls_first=True), "pk")
    )
