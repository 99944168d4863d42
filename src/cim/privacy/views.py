"""Privacy pages: the consent ledger and erasure on the customer page, the request register, retention rules and the
registers. Views validate and call services."""

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm
from cim.core.views import page
from cim.customers.models import Customer
from cim.customers.selectors import InvalidNumber, customer_get
from cim.privacy import requests as dsr
from cim.privacy.erasure import customer_erase
from cim.privacy.forms import (
    REGISTER_FORMS,
    ConsentForm,
    EraseForm,
    RequestActionForm,
    RequestForm,
    RetentionRuleForm,
)
from cim.privacy.models import BreachIncident, DataSubjectRequest, ErasureTombstone, RequestStatus, RetentionRule
from cim.privacy.registers import REGISTERS, register_save
from cim.privacy.retention import retention_rule_apply, retention_rule_count, retention_rule_save
from cim.privacy.selectors import request_list, request_overdue_count
from cim.privacy.services import consent_record, restriction_lift

REGISTER_TITLES = {
    "breaches": (_("Security incidents"), ["title", "detected_at", "approx_subjects", "authority_notified_at"]),
    "transfers": (_("Cross-border transfers"), ["recipient", "country", "legal_basis", "data_categories"]),
    "assessments": (_("Impact assessments"), ["subject", "assessed_on", "conclusion", "review_on"]),
}


def _customer(request, number: str) -> Customer:
    try:
        return customer_get(user=request.user, number=number)
    except InvalidNumber as error:
        raise Http404(str(error)) from None


def _errors(form, error: ValidationError) -> None:
    for field, messages_ in getattr(error, "message_dict", {None: error.messages}).items():
        for message in messages_:
            form.add_error(field if field in form.fields else None, message)


def _flash_errors(request, error: ValidationError) -> None:
    for message in error.messages:
        messages.error(request, message)


# --- on the customer page


@page(perm=Perm.CUSTOMER_CHANGE)
@require_POST
def consent_record_view(request, number: str):
    customer = _customer(request, number)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            consent_record(customer=customer, actor=request.user, **form.cleaned_data)
            messages.success(request, _("The consent ledger was updated."))
        except ValidationError as error:
            _flash_errors(request, error)
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}")
    return redirect(f"{customer_url(customer)}#privacy")


def customer_url(customer) -> str:
    from django.urls import reverse

    return reverse("customers:detail", args=[customer.number])


@page(perm=Perm.PRIVACY_MANAGE)
def erase_view(request, number: str):
    customer = _customer(request, number)
    form = EraseForm(request.POST or None, number=customer.number)
    if request.method == "POST" and form.is_valid():
        try:
            customer_erase(customer=customer, actor=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("The customer's personal data was erased."))
            return redirect(customer_url(customer))
        except ValidationError as error:
            _errors(form, error)
    erased = ErasureTombstone.objects.filter(customer_id=customer.pk).first()
    return render(
        request, "privacy/erase.html", {"customer": customer, "form": form, "erased": erased, "nav": "privacy"}
    )


@page(perm=Perm.PRIVACY_MANAGE)
@require_POST
def unrestrict_view(request, number: str):
    customer = _customer(request, number)
    restriction_lift(customer=customer, actor=request.user)
    messages.success(request, _("The restriction was lifted."))
    return redirect(f"{customer_url(customer)}#privacy")


# --- the request register


@page(perm=Perm.PRIVACY_MANAGE)
def request_list_view(request):
    status = request.GET.get("status", "open")
    overdue = request.GET.get("overdue") == "1"
    context = {
        "nav": "privacy",
        "tab": "requests",
        "requests": request_list(status=status if status != "all" else "", overdue=overdue)[:500],
        "status": status,
        "overdue": overdue,
        "overdue_count": request_overdue_count(),
        "statuses": RequestStatus.choices,
    }
    return render(request, "privacy/request_list.html", context)


@page(perm=Perm.PRIVACY_MANAGE)
def request_create_view(request):
    form = RequestForm(request.POST or None, initial={"customer": request.GET.get("customer", "")})
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        number = data.pop("customer").strip()
        try:
            customer = customer_get(user=request.user, number=number) if number else None
        except (Http404, InvalidNumber):
            form.add_error("customer", _("No such customer."))
        else:
            try:
                created = dsr.request_create(customer=customer, actor=request.user, **data)
                messages.success(request, _("Request %(reference)s recorded.") % {"reference": created.reference})
                return redirect("privacy:request", pk=created.pk)
            except ValidationError as error:
                _errors(form, error)
    return render(request, "privacy/request_form.html", {"nav": "privacy", "tab": "requests", "form": form})


@page(perm=Perm.PRIVACY_MANAGE)
def request_detail_view(request, pk: int):
    data_request = get_object_or_404(DataSubjectRequest.objects.select_related("customer", "handler"), pk=pk)
    form = RequestActionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        action, data = form.cleaned_data["action"], form.cleaned_data
        try:
            if action == "verify":
                dsr.request_verify(request=data_request, method=data["identity_method"], actor=request.user)
            elif action == "start":
                dsr.request_start(request=data_request, actor=request.user)
            elif action == "complete":
                dsr.request_complete(request=data_request, actor=request.user, note=data["note"])
            else:
                dsr.request_reject(request=data_request, reason=data["reason"], actor=request.user)
            messages.success(request, _("The request was updated."))
            return redirect("privacy:request", pk=pk)
        except ValidationError as error:
            _errors(form, error)
    context = {
        "nav": "privacy",
        "tab": "requests",
        "req": data_request,
        "form": form,
        "next": dsr.TRANSITIONS[data_request.status],
        "has_package": data_request.kind in ("access", "portability") and data_request.customer_id,
    }
    return render(request, "privacy/request_detail.html", context)


@page(perm=Perm.PRIVACY_MANAGE)
def request_package_view(request, pk: int, fmt: str):
    data_request = get_object_or_404(DataSubjectRequest.objects.select_related("customer"), pk=pk)
    try:
        content, content_type, name = dsr.package_download(request=data_request, fmt=fmt, actor=request.user)
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect("privacy:request", pk=pk)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- retention


@page(perm=Perm.PRIVACY_MANAGE)
def retention_view(request):
    form = RetentionRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            retention_rule_save(data=form.cleaned_data, actor=request.user)
            messages.success(request, _("The retention rule was saved."))
            return redirect("privacy:retention")
        except ValidationError as error:
            _errors(form, error)
    context = {"nav": "privacy", "tab": "retention", "rules": RetentionRule.objects.all(), "form": form}
    return render(request, "privacy/retention.html", context)


@page(perm=Perm.PRIVACY_MANAGE)
def retention_dry_run_view(request, pk: int):
    """The htmx fragment: how many rows the rule would touch now."""
    rule = get_object_or_404(RetentionRule, pk=pk)
    count = retention_rule_count(rule=rule)
    return HttpResponse(
        f'<span class="badge text-bg-warning" data-dry-run="{count}">'
        + (_("%(count)s would be changed now") % {"count": f"{count:,}"})
        + "</span>"
    )


@page(perm=Perm.PRIVACY_MANAGE)
@require_POST
def retention_apply_view(request, pk: int):
    rule = get_object_or_404(RetentionRule, pk=pk)
    if request.POST.get("toggle"):
        retention_rule_save(rule=rule, data={"enabled": not rule.enabled}, actor=request.user)
    else:
        count = retention_rule_apply(rule=rule, actor=request.user)
        messages.success(request, _("%(name)s: %(count)s changed.") % {"name": rule.name, "count": f"{count:,}"})
    return redirect("privacy:retention")


# --- registers


def _register(name: str):
    if name not in REGISTERS:
        raise Http404(_("No such register."))
    return REGISTERS[name]


def _cell(entry, name: str) -> str:
    display = getattr(entry, f"get_{name}_display", None)
    value = display() if display else getattr(entry, name)
    if isinstance(value, datetime.datetime):
        return date_format(timezone.localtime(value), "Y-m-d H:i")
    if isinstance(value, datetime.date):
        return date_format(value, "Y-m-d")
    return "—" if value in (None, "") else str(value)


@page(perm=Perm.PRIVACY_MANAGE)
def register_list_view(request, register: str):
    model = _register(register)
    title, columns = REGISTER_TITLES[register]
    context = {
        "nav": "privacy",
        "tab": register,
        "register": register,
        "title": title,
        "columns": [(c, model._meta.get_field(c).verbose_name) for c in columns],
        "rows": [(entry, [_cell(entry, c) for c in columns]) for entry in model.objects.all()[:500]],
        "overdue_breaches": sum(
            1 for b in BreachIncident.objects.filter(authority_notified_at__isnull=True) if b.is_overdue
        )
        if register == "breaches"
        else 0,
    }
    return render(request, "privacy/register_list.html", context)


@page(perm=Perm.PRIVACY_MANAGE)
def register_edit_view(request, register: str, pk: int | None = None):
    model = _register(register)
    form_class = REGISTER_FORMS[register]
    entry = get_object_or_404(model, pk=pk) if pk else None
    form = form_class(request.POST or None, instance=get_object_or_404(model, pk=pk) if pk else None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = register_save(instance=entry or model(), data=form.cleaned_data, actor=request.user)
            messages.success(request, _("Saved."))
            return redirect("privacy:register_edit", register=register, pk=saved.pk)
        except ValidationError as error:
            _errors(form, error)
    context = {
        "nav": "privacy",
        "tab": register,
        "register": register,
        "title": REGISTER_TITLES[register][0],
        "form": form,
        "entry": entry,
    }
    return render(request, "privacy/register_form.html", context)
