"""Sharing pages (信息共享): the share card and dialog of the customer and segment pages, revoking, and the shares
made and received. Views validate and call services; htmx swaps the card in place."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from cim.accounts.roles import Perm, Role, Scope, has_perm, scope_of
from cim.core.views import page, safe_next
from cim.customers.forms import ShareForm
from cim.customers.models import Customer, Share
from cim.customers.selectors import customer_get
from cim.customers.sharing import customers_share, default_until, share_create, share_revoke
from cim.customers.sharing_selectors import (
    ShareFilter,
    share_get,
    share_list,
    share_teams,
    shares_active,
    shares_of_customer,
    shares_received,
)
from cim.segments.models import Segment
from cim.segments.selectors import segment_get


def sharing_context(request, *, customer: Customer | None = None, segment: Segment | None = None, form=None) -> dict:
    """What the share card shows: shares through which the user's team has the subject, the subject's running
    shares (for the giving side), and whether the user may share it."""
    user = request.user
    if customer is not None:
        rows = shares_of_customer(user=user, customer=customer)
        can_share = has_perm(user, Perm.CUSTOMER_SHARE) and rows["in_scope"]
        subject = {"customer": customer.number}
    else:
        given = list(shares_active().filter(segment=segment).select_related("team", "shared_by"))
        received_ids = set(shares_received(user).filter(segment=segment).values_list("pk", flat=True))
        received = [s for s in given if s.pk in received_ids]
        can_share = has_perm(user, Perm.CUSTOMER_SHARE) and scope_of(user) == Scope.ALL
        rows = {"received": received, "given": given if can_share else []}
        subject = {"segment": segment.pk}
    return {
        "share_subject": subject,
        "shares_received": rows["received"],
        "shares_given": rows["given"],
        "can_share": can_share,
        "is_admin": user.role == Role.ADMINISTRATOR,
        "share_form": form,
    }


def _subject(request):
    params = request.POST if request.method == "POST" else request.GET
    number, segment_id = params.get("customer", ""), params.get("segment", "")
    if number:
        try:
            return customer_get(user=request.user, number=number), None
        except ValueError:  # not a customer number
            raise Http404 from None
    return None, segment_get(pk=int(segment_id) if segment_id.isdigit() else 0)


def _back(customer, segment) -> str:
    if customer is not None:
        return reverse("customers:detail", args=[customer.number]) + "#sharing"
    return reverse("segments:detail", args=[segment.pk]) + "#sharing"


def _card(request, customer, segment, form=None):
    context = sharing_context(request, customer=customer, segment=segment, form=form)
    return render(request, "customers/sharing/_card.html", context)


@page(perm=Perm.CUSTOMER_SHARE)
def share_create_view(request):
    """The share dialog (GET, swapped into the card by htmx) and its submission."""
    customer, segment = _subject(request)
    if request.method != "POST":
        form = ShareForm(initial={"until": default_until()})
        if request.htmx:
            return _card(request, customer, segment, form)
        context = {**sharing_context(request, customer=customer, segment=segment, form=form), "nav": "shares"}
        return render(request, "customers/sharing/new.html", {**context, "customer": customer, "segment": segment})
    form = ShareForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            share_create(
                actor=request.user,
                customer=customer,
                segment=segment,
                team=data["team"],
                include_subteams=data["include_subteams"],
                access=data["access"],
                reason=data["reason"],
                until=data["until"],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            if request.htmx:  # the card shows the new share
                return _card(request, customer, segment)
            messages.success(request, _("Shared with %(team)s.") % {"team": data["team"].name})
            return redirect(_back(customer, segment))
    if request.htmx:
        return _card(request, customer, segment, form)
    context = {**sharing_context(request, customer=customer, segment=segment, form=form), "nav": "shares"}
    return render(request, "customers/sharing/new.html", {**context, "customer": customer, "segment": segment})


@require_http_methods(["GET", "POST"])
@page(perm=Perm.CUSTOMER_SHARE)
def customers_share_view(request):
    """Share the customers ticked in the list with a team: the list's share dialog (GET, loaded by htmx into the
    list, its fields part of the list's form of ticked rows) and its submission."""
    if request.method == "GET":
        if request.GET.get("close"):
            return HttpResponse("")
        context = {"share_teams": share_teams(), "share_access_choices": Share.Access.choices}
        return render(request, "customers/sharing/_bulk.html", {**context, "share_until": default_until()})
    back = safe_next(request, reverse("customers:list"))
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()][:1000]
    if not ids:
        messages.warning(request, _("Tick the customers to share first."))
        return redirect(back)
    form = ShareForm({name: request.POST.get(f"share_{name}", "") for name in ShareForm.base_fields})
    if not form.is_valid():
        problems = [f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items()]
        messages.error(request, " ".join(problems))
        return redirect(back)
    data = form.cleaned_data
    try:
        shared = customers_share(
            actor=request.user,
            customer_ids=ids,
            team=data["team"],
            include_subteams=data["include_subteams"],
            access=data["access"],
            reason=data["reason"],
            until=data["until"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    skipped = len(ids) - shared
    text = _("%(n)s customers shared with %(team)s.") % {"n": shared, "team": data["team"].name}
    if skipped:
        text += " " + _("%(n)s passed over: outside your own scope or already shared with this team.") % {"n": skipped}
    messages.success(request, text)
    return redirect(back)


@require_POST
@page
def share_revoke_view(request, pk: int):
    share = share_revoke(share=share_get(user=request.user, pk=pk), actor=request.user)
    if request.htmx and request.POST.get("card"):
        customer = customer_get(user=request.user, number=share.customer.number) if share.customer_id else None
        return _card(request, customer, None if customer else share.segment)
    messages.success(request, _("The share with %(team)s was revoked.") % {"team": share.team.name})
    return redirect(safe_next(request, reverse("customers:shares")))


@page(perm=Perm.CUSTOMER_VIEW)
def share_list_view(request):
    """Shares received by my team (the default) or made by me, running or ended."""
    direction = request.GET.get("direction", "received")
    state = request.GET.get("state", "active")
    try:
        filters = ShareFilter(direction=direction, state=state)
    except ValueError:
        filters = ShareFilter(direction="received")
    shares = list(share_list(user=request.user, filters=filters)[:500])
    visible = set(
        Customer.objects.visible_to(request.user)
        .filter(pk__in=[s.customer_id for s in shares if s.customer_id])
        .values_list("pk", flat=True)
    )
    context = {
        "nav": "shares",
        "filters": filters,
        "shares": shares,
        "visible_customers": visible,
        "is_admin": request.user.role == Role.ADMINISTRATOR,
        "shared_list_url": reverse("customers:list") + "?shared=1",
    }
    return render(request, "customers/sharing/list.html", context)
