"""Segment pages: the list, the rule builder, a segment's members. Views validate and call services."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm, has_perm
from cim.core.views import page, safe_next
from cim.customers.models import Customer
from cim.customers.selectors import customer_ids_visible, customer_list
from cim.customers.views import parse_filters
from cim.customers.views_sharing import sharing_context
from cim.segments.models import Segment
from cim.segments.rules import OPERATOR_LABELS, OPERATORS, field_catalogue
from cim.segments.selectors import segment_get, segment_list, segment_preview
from cim.segments.services import (
    segment_create,
    segment_delete,
    segment_members_add,
    segment_refresh,
    segment_update,
)


@page(perm=Perm.CUSTOMER_VIEW)
def segment_list_view(request):
    context = {
        "nav": "segments",
        "segments": segment_list(),
        "can_manage": has_perm(request.user, Perm.SEGMENT_MANAGE),
    }
    return render(request, "segments/list.html", context)


def _catalogue() -> dict:
    """What the builder offers: fields by group, each with its operators and choices, labelled in the user's
    language."""
    fields = [
        {
            "key": f.key,
            "label": str(f.label),
            "group": str(f.group),
            "type": f.type,
            "choices": f.choices() if f.choices else None,
        }
        for f in field_catalogue().values()
    ]
    segments = [{"value": str(s.pk), "label": s.name} for s in Segment.objects.only("pk", "name")]
    return {
        "fields": fields,
        "operators": {kind: [[op, str(OPERATOR_LABELS[op])] for op in ops] for kind, ops in OPERATORS.items()},
        "segments": segments,
        "text": {
            "all": _("all of"),
            "any": _("any of"),
            "negate": _("not"),
            "condition": _("Add a condition"),
            "group": _("Add a group"),
            "remove": _("Remove"),
            "days": _("days"),
            "empty": _("No conditions: every current customer."),
            "matching_one": ngettext("%(n)s customer matches", "%(n)s customers match", 1),
            "matching_other": ngettext("%(n)s customer matches", "%(n)s customers match", 2),
        },
    }


def _form(request, segment: Segment | None):
    values = {
        "name": request.POST.get("name", segment.name if segment else ""),
        "description": request.POST.get("description", segment.description if segment else ""),
        "kind": request.POST.get("kind", segment.kind if segment else Segment.Kind.DYNAMIC),
        "tag": request.POST.get("tag", segment.tag.name if segment and segment.tag else ""),
    }
    rules_text = request.POST.get("rules", json.dumps(segment.rules if segment else {"match": "all", "rules": []}))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            rules = json.loads(rules_text or "{}")
        except ValueError:
            errors["rules"] = [_("The rules could not be read; build them again.")]
        else:
            try:
                if segment is None:
                    segment = segment_create(actor=request.user, rules=rules, **values)
                else:
                    values.pop("kind")
                    segment = segment_update(segment=segment, actor=request.user, rules=rules, **values)
            except ValidationError as error:
                errors = error.message_dict
            else:
                messages.success(request, _("Segment saved: %(n)s customers.") % {"n": segment.size})
                return redirect("segments:detail", pk=segment.pk)
    context = {
        "nav": "segments",
        "segment": segment,
        "values": values,
        "rules_text": rules_text,
        "errors": errors,
        "catalogue": _catalogue(),
        "kinds": Segment.Kind.choices,
    }
    return render(request, "segments/form.html", context, status=400 if errors else 200)


@page(perm=Perm.SEGMENT_MANAGE)
def segment_create_view(request):
    return _form(request, None)


@page(perm=Perm.SEGMENT_MANAGE)
def segment_edit_view(request, pk: int):
    return _form(request, segment_get(pk=pk))


@page(perm=Perm.CUSTOMER_VIEW)
def segment_detail_view(request, pk: int):
    segment = segment_get(pk=pk)
    visible = Customer.objects.visible_to(request.user)
    sample = visible.filter(segment_memberships__segment=segment).order_by("-pk")[:20]
    context = {
        "nav": "segments",
        "segment": segment,
        "sample": sample,
        "list_url": f"{reverse('customers:list')}?segment={segment.pk}",
        "can_manage": has_perm(request.user, Perm.SEGMENT_MANAGE),
        "rules_json": segment.rules,
        "catalogue": _catalogue(),
        **sharing_context(request, segment=segment),
    }
    return render(request, "segments/detail.html", context)


@require_POST
@page(perm=Perm.SEGMENT_MANAGE)
def segment_refresh_view(request, pk: int):
    run = segment_refresh(segment=segment_get(pk=pk), actor=request.user)
    messages.success(
        request,
        _("Refreshed: %(entered)s joined, %(left)s left; %(n)s customers.")
        % {"entered": run.entered, "left": run.left, "n": run.segment.size},
    )
    return redirect("segments:detail", pk=pk)


@require_POST
@page(perm=Perm.SEGMENT_MANAGE)
def segment_delete_view(request, pk: int):
    segment = segment_get(pk=pk)
    try:
        segment_delete(segment=segment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("segments:detail", pk=pk)
    messages.success(request, _("Segment deleted."))
    return redirect("segments:list")


@require_POST
@page(perm=Perm.SEGMENT_MANAGE)
def segment_preview_view(request):
    """The builder's live count: how many customers the rules being edited hold, and a few of them."""
    try:
        rules = json.loads(request.POST.get("rules") or "{}")
        segment_id = int(request.POST.get("segment") or 0) or None
        count, sample = segment_preview(user=request.user, rules=rules, segment_id=segment_id)
    except ValueError:
        return JsonResponse({"errors": [_("The rules could not be read; build them again.")]}, status=400)
    except ValidationError as error:
        return JsonResponse({"errors": error.messages}, status=400)
    return JsonResponse(
        {
            "count": count,
            "sample": [
                {"number": c.number, "name": c.display_name, "url": reverse("customers:detail", args=[c.number])}
                for c in sample
            ],
        }
    )


@require_POST
@page(perm=Perm.CUSTOMER_TAG)
def segment_add_members_view(request):
    """Put the customers ticked in the list (or all matching its filters) on a static list."""
    back = safe_next(request, reverse("customers:list"))
    chosen = request.POST.get("segment", "")
    segment = segment_get(pk=int(chosen) if chosen.isdigit() else 0)
    if request.POST.get("all_matching"):
        filters, _problems = parse_filters(QueryDict(request.POST.get("query", "")))
        ids = list(customer_list(user=request.user, filters=filters).values_list("pk", flat=True))
    else:
        ids = customer_ids_visible(user=request.user, ids=[int(v) for v in request.POST.getlist("ids") if v.isdigit()])
    if not ids:
        messages.warning(request, _("Tick the customers to add first."))
        return redirect(back)
    try:
        added = segment_members_add(segment=segment, customer_ids=ids, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    messages.success(request, _("%(n)s customers added to “%(list)s”.") % {"n": added, "list": segment.name})
    return redirect(back)
