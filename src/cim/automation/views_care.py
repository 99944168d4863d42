"""Customer care pages: the month calendar, the customers of one day, care plans and their runs, gifts (a list and
the customer page's card). Views validate input and call services and selectors; they never write themselves."""

from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from cim.accounts.models import User
from cim.accounts.roles import Perm, has_perm
from cim.activities.models import Priority
from cim.automation.calendar import DateKind, business_today
from cim.automation.care import MAX_LEAD_DAYS, care_plan_create, care_plan_update, care_run, gift_record
from cim.automation.care_selectors import (
    CALENDAR_KINDS,
    care_calendar,
    care_customers_on,
    care_plan_get,
    care_plan_list,
    care_run_list,
    customer_gifts,
    gifts_visible,
)
from cim.automation.models import CarePlan, MessageTemplate
from cim.automation.models.care import GIFT_OCCASION_CHOICES, OCCASION_CHOICES, CareAction
from cim.core.views import page, require
from cim.customers.selectors import InvalidNumber, customer_get
from cim.segments.models import Segment

PAGE = 50


def _month(value: str | None) -> date:
    """`YYYY-MM` (the calendar's `month` parameter), or this month for anything else."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        return date(year, month, 1)
    except ValueError:
        return business_today().replace(day=1)


def _owner(request) -> User | None:
    try:
        pk = int(request.GET.get("owner") or 0)
    except ValueError:
        return None
    return User.objects.filter(pk=pk).first() if pk > 0 else None


def _owners():
    return User.objects.filter(is_active=True).order_by("username")


@page(perm=Perm.CUSTOMER_VIEW)
def care_calendar_view(request):
    first = _month(request.GET.get("month"))
    owner = _owner(request)
    context = {
        "nav": "care",
        "calendar": care_calendar(
            user=request.user, year=first.year, month=first.month, owner_id=owner.pk if owner else None
        ),
        "owner": owner,
        "owners": _owners(),
        "today": business_today(),
        "weekdays": [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")],
    }
    return render(request, "automation/care/calendar.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def care_day_view(request):
    """Everyone of one kind on one day (the calendar's "more" link), paged."""
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        raise Http404(_("Choose a day as YYYY-MM-DD.")) from None
    kind = request.GET.get("kind", "")
    if kind not in CALENDAR_KINDS:
        raise Http404(_("Choose a birthday, lunar birthday or anniversary."))
    owner = _owner(request)
    customers = care_customers_on(user=request.user, kind=kind, day=day, owner_id=owner.pk if owner else None)
    page_obj = Paginator(customers, PAGE).get_page(request.GET.get("page"))
    context = {"nav": "care", "day": day, "kind": DateKind(kind), "owner": owner, "page_obj": page_obj}
    return render(request, "automation/care/day.html", context)


# --- plans


class CarePlanForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    occasion = forms.ChoiceField(label=gettext_lazy("Occasion"), choices=OCCASION_CHOICES)
    action = forms.ChoiceField(label=gettext_lazy("Action"), choices=CareAction.choices, initial=CareAction.GREETING)
    lead_days = forms.IntegerField(
        label=gettext_lazy("Days ahead"),
        min_value=0,
        max_value=MAX_LEAD_DAYS,
        initial=0,
        help_text=gettext_lazy("0: on the day itself."),
    )
    templates = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Greeting templates"),
        queryset=MessageTemplate.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "For greetings: one per language, on one channel. Each customer gets the one in their language."
        ),
    )
    segment = forms.ModelChoiceField(
        label=gettext_lazy("Only the customers of"),
        queryset=Segment.objects.none(),
        required=False,
        empty_label=gettext_lazy("Every customer"),
    )
    task_title = forms.CharField(
        label=gettext_lazy("Call task title"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("For call tasks; empty: “Care call: <occasion>”."),
    )
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args, plan: CarePlan | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        templates = MessageTemplate.objects.filter(is_active=True)
        if plan is not None:
            templates = templates | MessageTemplate.objects.filter(pk__in=plan.templates.values("pk"))
        self.fields["templates"].queryset = templates.order_by("name", "language")
        self.fields["segment"].queryset = Segment.objects.order_by("name")


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    for name, problems in (error.message_dict if hasattr(error, "error_dict") else {"": error.messages}).items():
        form.add_error(name if name in form.fields else None, problems)


@page(perm=Perm.CARE_MANAGE)
def care_plans_view(request):
    context = {"nav": "care", "plans": care_plan_list(), "runs": care_run_list()}
    return render(request, "automation/care/plans.html", context)


def _plan_form_page(request, plan: CarePlan | None):
    initial = None
    if plan is not None:
        initial = {name: getattr(plan, name) for name in ("name", "occasion", "action", "lead_days", "segment")}
        initial.update(task_title=plan.task_title, priority=plan.priority, is_active=plan.is_active)
        initial["templates"] = list(plan.templates.all())
    form = CarePlanForm(request.POST or None, plan=plan, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        templates = list(values.pop("templates"))
        try:
            if plan is None:
                plan = care_plan_create(actor=request.user, templates=templates, **values)
            else:
                plan = care_plan_update(plan=plan, actor=request.user, templates=templates, **values)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Care plan “%(name)s” was saved.") % {"name": plan.name})
            return redirect("automation:care_plans")
    context = {"nav": "care", "form": form, "plan": plan}
    return render(request, "automation/care/plan_form.html", context)


@page(perm=Perm.CARE_MANAGE)
def care_plan_create_view(request):
    return _plan_form_page(request, None)


@page(perm=Perm.CARE_MANAGE)
def care_plan_edit_view(request, pk: int):
    return _plan_form_page(request, care_plan_get(pk=pk))


@require_POST
@page(perm=Perm.CARE_MANAGE)
def care_run_view(request):
    """Run the active plans for today now (they run every hour anyway; nothing happens twice)."""
    runs = care_run(actor=request.user, force=True)
    for run in runs:
        if run.error:
            messages.error(request, _("“%(name)s”: %(error)s") % {"name": run.plan.name, "error": run.error})
    queued, tasks = sum(r.queued for r in runs), sum(r.tasks for r in runs)
    messages.success(
        request,
        ngettext("%(count)s greeting queued", "%(count)s greetings queued", queued) % {"count": queued}
        + _(", ")
        + ngettext("%(count)s call task created.", "%(count)s call tasks created.", tasks) % {"count": tasks},
    )
    return redirect("automation:care_plans")


# --- gifts


class GiftForm(forms.Form):
    description = forms.CharField(label=gettext_lazy("Gift or benefit"), max_length=200)
    value = forms.DecimalField(
        label=gettext_lazy("Value"), min_value=0, max_digits=12, decimal_places=2, required=False
    )
    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3, initial="CNY")
    occasion = forms.ChoiceField(label=gettext_lazy("Occasion"), choices=GIFT_OCCASION_CHOICES, initial="other")
    given_on = forms.DateField(label=gettext_lazy("Given on"), widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


@page(perm=Perm.CUSTOMER_VIEW)
def gifts_view(request):
    occasion = request.GET.get("occasion") or None
    if occasion not in dict(GIFT_OCCASION_CHOICES):
        occasion = None
    gifts = gifts_visible(user=request.user, occasion=occasion)
    page_obj = Paginator(gifts, PAGE).get_page(request.GET.get("page"))
    context = {"nav": "care", "page_obj": page_obj, "occasion": occasion, "occasions": GIFT_OCCASION_CHOICES}
    return render(request, "automation/care/gifts.html", context)


def _customer(request, number: str):
    try:
        return customer_get(user=request.user, number=number)
    except InvalidNumber:
        raise Http404(_("No customer with number %(number)s.") % {"number": number[:40]}) from None


@page(perm=Perm.CUSTOMER_VIEW)
def customer_gifts_view(request, number: str):
    """The customer page's gift card (an htmx fragment): the gifts, and a form for roles that log activities."""
    customer = _customer(request, number)
    can_record = has_perm(request.user, Perm.ACTIVITY_LOG) and not customer.is_archived
    form = None
    status = 200
    if request.method == "POST":
        require(request, Perm.ACTIVITY_LOG)
        form = GiftForm(request.POST)
        if form.is_valid():
            try:
                gift_record(customer=customer, actor=request.user, **form.cleaned_data)
            except ValidationError as error:
                _add_errors(form, error)
                status = 422
            else:
                form = None
                if not request.htmx:
                    messages.success(request, _("The gift was recorded."))
                    return redirect(reverse("customers:detail", args=[customer.number]) + "#care-gifts")
        else:
            status = 422
    if can_record and form is None:
        form = GiftForm(initial={"given_on": business_today(), "currency": "CNY"})
    context = {"customer": customer, "gifts": customer_gifts(customer=customer)[:20], "form": form}
    return render(request, "automation/care/_customer_gifts.html", context, status=status)
