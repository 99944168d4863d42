"""The home dashboard (key figures, charts and cohort retention for a period, team and channel) and the scheduled
reports page, where those allowed create, change and delete schedules (the services write) or download a report."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from cim.accounts.models import Team
from cim.accounts.roles import Perm
from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter, dashboard, dashboard_filter
from cim.analytics.models import ReportSchedule
from cim.analytics.reports import REPORTS, UNFILTERED, ReportError
from cim.analytics.schedules import (
    report_schedule_create,
    report_schedule_delete,
    report_schedule_download,
    report_schedule_update,
)
from cim.core.views import page
from cim.customers.choices import SourceChannel
from cim.segments.selectors import segment_list

PERIODS = [
    ("30d", gettext_lazy("Last 30 days")),
    ("90d", gettext_lazy("Last 90 days")),
    ("year", gettext_lazy("This year")),
    ("custom", gettext_lazy("Custom")),
]


def _team_choices() -> list[tuple[str, str]]:
    return [("", gettext_lazy("All teams")), *((str(pk), name) for pk, name in Team.objects.values_list("pk", "name"))]


def _segment_choices() -> list[tuple[str, str]]:
    return [("", gettext_lazy("All customers")), *((str(s.pk), s.name) for s in segment_list())]


class FilterForm(forms.Form):
    """The dashboard's filters as form fields (the query string of the page, the filters of a schedule)."""

    period = forms.ChoiceField(label=gettext_lazy("Period"), choices=PERIODS, required=False)
    start = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    team_id = forms.ChoiceField(label=gettext_lazy("Team"), required=False)
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"),
        required=False,
        choices=[("", gettext_lazy("All channels")), *SourceChannel.choices],
    )
    segment = forms.ChoiceField(label=gettext_lazy("Segment"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team_id"].choices = _team_choices()
        self.fields["segment"].choices = _segment_choices()

    def filter_values(self) -> dict:
        """The values as `dashboard_filter` takes them (from/to for the dates)."""
        data = self.cleaned_data
        return {
            "period": data.get("period"),
            "from": data.get("start"),
            "to": data.get("end"),
            "team_id": data.get("team_id"),
            "channel": data.get("channel"),
            "segment": data.get("segment"),
        }


def _filters(request) -> tuple[DashboardFilter, dict[str, list[str]]]:
    """The filters of the query string, and what is wrong with them (then: the last 30 days, unfiltered)."""
    values = {
        "period": request.GET.get("period", ""),
        "from": request.GET.get("from", ""),
        "to": request.GET.get("to", ""),
        "team_id": request.GET.get("team_id", ""),
        "channel": request.GET.get("channel", ""),
        "segment": request.GET.get("segment", ""),
    }
    if values["from"] or values["to"]:
        values["period"] = "custom"  # days typed in the form are meant, whichever preset is still selected
    try:
        return dashboard_filter(values), {}
    except ValidationError as error:
        return DashboardFilter(), error.message_dict


@page(perm=Perm.ANALYTICS_VIEW)
def dashboard_view(request):
    filters, errors = _filters(request)
    board = dashboard(filters)
    cohorts = cohort_retention(filters)
    charts = {
        "unit": board.trend_unit,
        "trend": [
            [day.isoformat() if board.trend_unit == "day" else f"{day:%Y-%m}", round(revenue, 2), n, active]
            for day, revenue, n, active in board.trend
        ],
        "channels": [[label, n] for _key, label, n in board.new_by_channel],
        "cohorts": {
            "months": [f"{cohort.month:%Y-%m}" for cohort in cohorts.cohorts],
            "sizes": [cohort.customers for cohort in cohorts.cohorts],
            "cells": [
                [offset, row, round(100 * share, 1)]
                for row, cohort in enumerate(cohorts.cohorts)
                for offset, share in enumerate(cohort.retention)
                if offset
            ],
            "offsets": max(cohorts.months - 1, 0),
        },
    }
    context = {
        "nav": "dashboard",
        "board": board,
        "cohorts": cohorts,
        "filters": filters,
        "periods": PERIODS,
        "teams": _team_choices()[1:],
        "channels": SourceChannel.choices,
        "segments": _segment_choices()[1:],
        "errors": errors,
        "charts": charts,
    }
    return render(request, "analytics/dashboard.html", context)


class ScheduleForm(FilterForm):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    report = forms.ChoiceField(label=gettext_lazy("Report"), choices=list(REPORTS.items()))
    format = forms.ChoiceField(label=gettext_lazy("Format"), choices=ReportSchedule.Format.choices)
    frequency = forms.ChoiceField(label=gettext_lazy("Frequency"), choices=ReportSchedule.Frequency.choices)
    recipients = forms.CharField(
        label=gettext_lazy("Recipients"),
        help_text=gettext_lazy("E-mail addresses, one a line or separated by commas."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    language = forms.ChoiceField(label=gettext_lazy("Language"))
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    field_order = ["name", "report", "format", "frequency", "recipients", "language", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = settings.LANGUAGES
        self.fields["period"].initial = "30d"

    def schedule_values(self) -> dict:
        data = self.cleaned_data
        values = {name: data[name] for name in ("name", "report", "format", "frequency", "recipients", "language")}
        return {**values, "is_active": data["is_active"], "filters": self.filter_values()}


def _initial(schedule: ReportSchedule) -> dict:
    filters = schedule.filters or {}
    return {
        "name": schedule.name,
        "report": schedule.report,
        "format": schedule.format,
        "frequency": schedule.frequency,
        "recipients": "\n".join(schedule.recipients),
        "language": schedule.language,
        "is_active": schedule.is_active,
        "period": filters.get("period", "30d"),
        "start": filters.get("from"),
        "end": filters.get("to"),
        "team_id": filters.get("team_id", ""),
        "channel": filters.get("channel", ""),
    }


def _schedule(schedule_id: int) -> ReportSchedule:
    schedule = ReportSchedule.objects.select_related("owner").filter(pk=schedule_id).first()
    if schedule is None:
        raise Http404(_("No scheduled report with this id."))
    return schedule


def _save(request, form: ScheduleForm, schedule: ReportSchedule | None) -> ReportSchedule | None:
    if not form.is_valid():
        return None
    try:
        if schedule is None:
            return report_schedule_create(data=form.schedule_values(), actor=request.user)
        return report_schedule_update(schedule=schedule, data=form.schedule_values(), actor=request.user)
    except ValidationError as error:
        for name, texts in error.message_dict.items():
            form.add_error(name if name in form.fields else None, texts)
        return None


@page(perm=Perm.ANALYTICS_MANAGE)
def schedules_view(request):
    """The scheduled reports, and a form for a new one."""
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and (saved := _save(request, form, None)):
        messages.success(request, _("Scheduled report %(name)s saved.") % {"name": saved.name})
        return redirect("analytics:schedules")
    context = {
        "nav": "analytics",
        "schedules": ReportSchedule.objects.select_related("owner"),
        "form": form,
        "reports": REPORTS,
        "unfiltered": UNFILTERED,
    }
    return render(request, "analytics/schedules.html", context)


@page(perm=Perm.ANALYTICS_MANAGE)
def schedule_edit_view(request, schedule_id: int):
    schedule = _schedule(schedule_id)
    form = ScheduleForm(request.POST or None, initial=_initial(schedule))
    if request.method == "POST" and _save(request, form, schedule):
        messages.success(request, _("Scheduled report %(name)s saved.") % {"name": schedule.name})
        return redirect("analytics:schedules")
    return render(request, "analytics/schedule_edit.html", {"nav": "analytics", "schedule": schedule, "form": form})


@require_POST
@page(perm=Perm.ANALYTICS_MANAGE)
def schedule_delete_view(request, schedule_id: int):
    schedule = _schedule(schedule_id)
    report_schedule_delete(schedule=schedule, actor=request.user)
    messages.success(request, _("Scheduled report %(name)s deleted.") % {"name": schedule.name})
    return redirect("analytics:schedules")


@page(perm=Perm.ANALYTICS_MANAGE)
def schedule_download_view(request, schedule_id: int):
    """The schedule's report built now, as a download (nothing is sent or recorded)."""
    schedule = _schedule(schedule_id)
    try:
        built = report_schedule_download(schedule=schedule, actor=request.user)
    except ReportError as error:
        messages.error(request, str(error))
        return redirect("analytics:schedules")
    response = HttpResponse(built.content, content_type=built.mimetype)
    response["Content-Disposition"] = f'attachment; filename="{built.filename}"'
    return response
