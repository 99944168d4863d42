"""The acquisition page: CAC, historical CLV and CLV:CAC per channel for a period, and the costs behind them,
entered or removed here by those allowed to (the services write)."""

from dataclasses import asdict
from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.accounts.roles import Perm, has_perm
from cim.analytics.acquisition import (
    acquisition_cost_delete,
    acquisition_cost_list,
    acquisition_cost_set,
    acquisition_report,
    margin_check,
    month_of,
    months_back,
    period_parse,
)
from cim.analytics.models import AcquisitionCost
from cim.core.views import page, require
from cim.customers.choices import SourceChannel


class CostForm(forms.Form):
    """A channel's cost in a month; the service checks the values, so page, API and CLI say the same."""

    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=SourceChannel.choices)
    month = forms.CharField(
        label=gettext_lazy("Month"), widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})
    )
    amount = forms.CharField(label=gettext_lazy("Amount"), widget=forms.TextInput(attrs={"inputmode": "decimal"}))
    currency = forms.CharField(label=gettext_lazy("Currency"), initial="CNY", max_length=3)
    note = forms.CharField(label=gettext_lazy("Note"), required=False)


def _filters(request) -> tuple[date, date, float | None, dict[str, list[str]]]:
    """The query's period (`from`, `to`: months) and gross margin, and what is wrong with them; a wrong period
    gives the last twelve months, a wrong margin none."""
    errors: dict[str, list[str]] = {}
    try:
        start, end = period_parse(request.GET.get("from", ""), request.GET.get("to", ""))
    except ValidationError as error:
        errors.update(error.message_dict)
        start, end = period_parse("", "")
    margin = None
    if text := request.GET.get("margin", "").strip():
        try:
            margin = float(text)
            margin_check(margin)
        except ValueError:
            errors["margin"] = [_("Enter a gross margin between 0 and 1, like 0.35.")]
            margin = None
        except ValidationError as error:
            errors.update(error.message_dict)
            margin = None
    return start, end, margin, errors


def _save(request, form: CostForm) -> bool:
    """Enter or remove the form's cost; False (the errors on the form) when the values are not valid."""
    if request.POST.get("action") == "delete":
        deleted = acquisition_cost_delete(
            channel=request.POST.get("channel", ""), month=request.POST.get("month", ""), actor=request.user
        )
        if deleted:
            messages.success(request, _("Cost removed."))
        else:
            messages.warning(request, _("No cost is entered for this channel and month."))
        return True
    if not form.is_valid():
        return False
    try:
        cost = acquisition_cost_set(**form.cleaned_data, actor=request.user)
    except ValidationError as error:
        for name, texts in error.message_dict.items():
            form.add_error(name if name in form.fields else None, texts)
        return False
    messages.success(
        request,
        _("Cost of %(channel)s in %(month)s saved.")
        % {"channel": cost.get_channel_display(), "month": f"{cost.month:%Y-%m}"},
    )
    return True


def _initial(request, end) -> dict:
    """An empty form for the period's last month, or, after "Change" on a cost, that cost."""
    try:
        edited = AcquisitionCost.objects.filter(
            channel=request.GET.get("channel", ""), month=month_of(request.GET.get("month", ""))
        ).first()
    except ValueError:
        edited = None
    if edited is None:
        return {"month": f"{end:%Y-%m}", "currency": "CNY"}
    fields = ("channel", "amount", "currency", "note")
    return {"month": f"{edited.month:%Y-%m}", **{name: getattr(edited, name) for name in fields}}


@page(perm=Perm.ANALYTICS_VIEW)
def acquisition_view(request):
    start, end, margin, period_errors = _filters(request)
    can_manage = has_perm(request.user, Perm.ANALYTICS_MANAGE)
    form = None
    if request.method == "POST":
        require(request, Perm.ANALYTICS_MANAGE)
        form = CostForm(request.POST)
        if _save(request, form):
            return redirect(
                f"{reverse('analytics:acquisition')}?{urlencode({'from': f'{start:%Y-%m}', 'to': f'{end:%Y-%m}'})}"
            )
    elif can_manage:
        form = CostForm(initial=_initial(request, end))
    report = acquisition_report(start=start, end=end, margin=margin)
    months = [start]
    while months[-1] < end:
        months.append(months_back(months[-1], -1))
    chart = {
        "months": [f"{month:%Y-%m}" for month in months],
        "channels": [asdict(figure) for figure in report.channels],
        "history": [{**asdict(row), "month": f"{row.month:%Y-%m}"} for row in report.history],
    }
    context = {
        "nav": "analytics",
        "report": report,
        "period_fields": [
            ("from", _("From"), "month", request.GET.get("from", f"{start:%Y-%m}")),
            ("to", _("To"), "month", request.GET.get("to", f"{end:%Y-%m}")),
            ("margin", _("Gross margin (0–1, optional)"), "number", request.GET.get("margin", "")),
        ],
        "period_errors": period_errors,
        "start": f"{start:%Y-%m}",
        "end": f"{end:%Y-%m}",
        "costs": acquisition_cost_list(start=start, end=end),
        "form": form,
        "can_manage": can_manage,
        "chart": chart,
    }
    return render(request, "analytics/acquisition.html", context)
