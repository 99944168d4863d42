"""Data-quality pages: the pairs of likely duplicates to review, the merge page (choose each value, see where it
comes from), and undoing a merge. Views validate and call services; they never write themselves."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm, has_perm
from cim.core.views import page, require, safe_next
from cim.customers.choices import CustomerType, SourceChannel
from cim.customers.history import field_label
from cim.customers.models import Customer
from cim.customers.selectors import customer_count, customer_get
from cim.customers.services import customer_review
from cim.privacy.masking import field_policy
from cim.privacy.registry import field_info
from cim.quality.explain import comparison_reasons
from cim.quality.merge import MERGEABLE_FIELDS, customer_merge, customer_unmerge, merge_plan
from cim.quality.models import DuplicateCandidate, MergeRecord
from cim.quality.rules import REQUIRABLE, required_fields, required_fields_set
from cim.quality.scores import quality_report, review_queue
from cim.quality.selectors import duplicate_candidate_list, external_systems
from cim.quality.services import duplicate_decide
from cim.quality.tasks import duplicates_scan_run

PAGE = 100


@page(perm=Perm.CUSTOMER_VIEW)
def duplicates_view(request):
    if request.method == "POST":
        require(request, Perm.QUALITY_MANAGE)
        link = request.POST.getlist("link") or None
        if link and (len(link) != 2 or link[0] == link[1] or not set(link) <= set(external_systems())):
            messages.error(request, _("Choose two different systems to link."))
            return redirect("quality:duplicates")
        duplicates_scan_run.enqueue(user_id=request.user.pk, train=bool(request.POST.get("train")), link=link)
        messages.success(request, _("The scan runs in the background; its pairs appear here when it finishes."))
        return redirect("quality:duplicates")
    pairs = list(duplicate_candidate_list(user=request.user)[:PAGE])
    for pair in pairs:
        pair.reasons = comparison_reasons(pair.contributions)
    context = {
        "nav": "quality",
        "section": "duplicates",
        "pairs": pairs,
        "can_decide": has_perm(request.user, Perm.CUSTOMER_CHANGE),
        "can_merge": has_perm(request.user, Perm.CUSTOMER_MERGE),
        "can_scan": has_perm(request.user, Perm.QUALITY_MANAGE),
        "systems": external_systems(),
    }
    return render(request, "quality/duplicates.html", context)


@require_POST
@page(perm=Perm.CUSTOMER_CHANGE)
def duplicate_decide_view(request, pk: int):
    pair = get_object_or_404(duplicate_candidate_list(user=request.user, status=None), pk=pk)
    duplicate_decide(candidate=pair, status=DuplicateCandidate.Status.DISTINCT, actor=request.user)
    messages.success(request, _("Marked as different customers."))
    return redirect("quality:duplicates")


def _merge_customers(request) -> tuple[Customer, list[Customer]]:
    params = request.POST if request.method == "POST" else request.GET
    merging = request.method == "POST"  # a customer shared read-only may be compared, not merged
    try:
        survivor = customer_get(user=request.user, number=params.get("survivor", ""), for_change=merging)
        duplicates = [
            customer_get(user=request.user, number=n, for_change=merging) for n in params.getlist("duplicates") if n
        ]
    except ValueError:
        raise Http404 from None
    return survivor, [c for c in duplicates if c.pk != survivor.pk]


@page(perm=Perm.CUSTOMER_MERGE)
def merge_view(request):
    survivor, duplicates = _merge_customers(request)
    records = [survivor, *duplicates]
    choices = {}
    if request.method == "POST":
        by_pk = {str(c.pk): c.pk for c in records}
        choices = {name: by_pk[request.POST[name]] for name in MERGEABLE_FIELDS if request.POST.get(name) in by_pk}
        try:
            record = customer_merge(survivor=survivor, duplicates=duplicates, actor=request.user, choices=choices)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("%(count)s customers were merged into %(number)s.")
                % {"count": len(duplicates), "number": survivor.number},
            )
            return redirect("customers:detail", number=record.survivor.number)
    plan = merge_plan(survivor=survivor, merged=duplicates, choices=choices)
    rows = []
    for name in MERGEABLE_FIELDS:
        values = [(c, _display(c, name, request.user)) for c in records]
        if all(value in (None, "", {}) for _c, value in values):
            continue
        chosen = plan.provenance[name]
        rows.append({"name": name, "label": field_label(name), "values": values, "chosen": chosen})
    context = {"nav": "quality", "survivor": survivor, "duplicates": duplicates, "records": records, "rows": rows}
    return render(request, "quality/merge.html", context)


def _display(customer: Customer, name: str, user):
    """A field's value as people read it: choice labels, the owner's and team's names, custom fields as pairs;
    sensitive fields masked as the user's role sees them (cim.privacy.masking)."""
    info = field_info("customers.customer", name)
    if info is not None and info.sensitive:
        return field_policy(user).mask(info.mask, getattr(customer, name), customer.owner_id)
    if name in ("owner_id", "team_id"):
        return getattr(customer, name.removesuffix("_id")) or ""
    if Customer._meta.get_field(name).choices:
        return getattr(customer, f"get_{name}_display")()
    if name == "custom_fields":
        return ", ".join(f"{key}: {value}" for key, value in (customer.custom_fields or {}).items())
    return getattr(customer, name)


@require_POST
@page(perm=Perm.CUSTOMER_MERGE)
def unmerge_view(request, pk: int):
    record = get_object_or_404(MergeRecord, pk=pk)
    customer_get(user=request.user, number=Customer.objects.get(pk=record.survivor_id).number, for_change=True)
    try:
        customer_unmerge(record=record, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The merge was undone: every customer is back as it was."))
    return redirect("customers:detail", number=record.survivor.number)


@page(perm=Perm.CUSTOMER_VIEW)
def quality_view(request):
    report = quality_report()
    sources = dict(SourceChannel.choices)
    for row in report["sources"]:
        row["label"] = sources.get(row["source"], _("Unknown"))
    context = {"nav": "quality", "section": "overview", "report": report, "months": settings.CIM_REVIEW_MONTHS}
    return render(request, "quality/overview.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def review_view(request):
    queue = review_queue(user=request.user)
    due, more = customer_count(queue, cap=1000)
    context = {
        "nav": "quality",
        "section": "review",
        "customers": queue[:PAGE],
        "due": due,
        "more": more,
        "months": settings.CIM_REVIEW_MONTHS,
        "can_review": has_perm(request.user, Perm.CUSTOMER_CHANGE),
    }
    return render(request, "quality/review.html", context)


@require_POST
@page(perm=Perm.CUSTOMER_CHANGE)
def customer_review_view(request, number: str):
    customer = customer_get(user=request.user, number=number, for_change=True)
    customer_review(customer=customer, actor=request.user)
    messages.success(request, _("Marked as reviewed."))
    return redirect(safe_next(request, reverse("customers:detail", args=[customer.number])))


@page(perm=Perm.SETTINGS_MANAGE)
def required_fields_view(request):
    types = [("", _("Every customer")), *CustomerType.choices]
    if request.method == "POST":
        for value, _label in types:
            required_fields_set(
                customer_type=value, fields=request.POST.getlist(f"required-{value or 'all'}"), actor=request.user
            )
        messages.success(request, _("Required fields were saved."))
        return redirect("quality:required_fields")
    rules = required_fields()
    rows = [{"key": value or "all", "label": label, "fields": rules.get(value, frozenset())} for value, label in types]
    context = {"nav": "settings", "section": "quality", "rows": rows, "requirable": REQUIRABLE}
    return render(request, "quality/required_fields.html", context)
