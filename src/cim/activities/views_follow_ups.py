"""Follow-up pages: my follow-ups by tab, the team's overdue ones, create and edit, complete/cancel/reopen, the
customer page's card, call-back plans (administrators) and notifications.

Views validate input and call services and selectors; they never write themselves (DESIGN §3.1).
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from cim.accounts.models import User
from cim.accounts.roles import Perm, has_perm
from cim.activities.follow_up_selectors import (
    TABS,
    callback_plan_get,
    callback_plan_list,
    callback_plan_owners,
    customer_follow_ups,
    customer_interactions_recent,
    follow_up_default_owner,
    follow_up_get,
    follow_up_owners,
    my_follow_up_tab_counts,
    my_follow_ups,
    notification_get,
    notification_list,
    overdue_by_owner,
    team_overdue,
)
from cim.activities.follow_ups import (
    callback_plan_create,
    callback_plan_update,
    callback_plans_run,
    follow_up_cancel,
    follow_up_complete,
    follow_up_create,
    follow_up_reopen,
    follow_up_update,
    notification_read,
    notifications_read_all,
)
from cim.activities.models import CallbackPlan, FollowUp, Interaction, Priority
from cim.core.views import page, require, safe_next
from cim.customers.models import Customer, SavedView
from cim.customers.selectors import InvalidNumber, customer_get, saved_view_list

PAGE = 50
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
TAB_LABELS = {
    "today": gettext_lazy("Today"),
    "overdue": gettext_lazy("Overdue"),
    "upcoming": gettext_lazy("Upcoming"),
    "done": gettext_lazy("Done"),
}


def _datetime_field(label, *, required: bool = True) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
    )


class FollowUpForm(forms.Form):
    """A follow-up's fields; the owner is chosen among those who may own the customer's follow-ups."""

    customer = forms.CharField(label=gettext_lazy("Customer number"), max_length=32)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    due_at = _datetime_field(gettext_lazy("Due"))
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL)
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none())
    remind_at = _datetime_field(gettext_lazy("Remind at"), required=False)
    no_reminder = forms.BooleanField(label=gettext_lazy("No reminder"), required=False)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, max_length=5000, widget=forms.Textarea)

    def __init__(self, *args, customer: Customer | None, follow_up: FollowUp | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        minutes = settings.CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES
        self.fields["remind_at"].help_text = _("Empty: %(n)s minutes before it is due.") % {"n": minutes}
        self.fields["notes"].widget.attrs["rows"] = 3
        if customer is not None:
            owners = follow_up_owners(customer=customer)
            if follow_up is not None:  # its owner stays a choice even if they could no longer be given it
                owners = owners | User.objects.filter(pk=follow_up.owner_id)
            self.fields["owner"].queryset = owners.order_by("username")
        if follow_up is not None:
            del self.fields["customer"]

    def reminder(self):
        """What the form says about the reminder: None (none), "default" (the usual time before due), a time."""
        if self.cleaned_data.get("no_reminder"):
            return None
        return self.cleaned_data.get("remind_at") or "default"


class CompleteForm(forms.Form):
    interaction = forms.ModelChoiceField(
        label=gettext_lazy("Done by the interaction"), queryset=Interaction.objects.none(), required=False
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        recent = list(customer_interactions_recent(customer=customer).values_list("pk", flat=True))
        self.has_choices = bool(recent)
        self.fields["interaction"].queryset = Interaction.objects.filter(pk__in=recent).order_by("-occurred_at", "-id")


class CallbackPlanForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    saved_view = forms.ModelChoiceField(label=gettext_lazy("Customers (saved view)"), queryset=None)
    every_days = forms.IntegerField(label=gettext_lazy("Every (days)"), min_value=1, max_value=3650, initial=30)
    title = forms.CharField(label=gettext_lazy("Task title"), max_length=200)
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL)
    default_owner = forms.ModelChoiceField(label=gettext_lazy("Default owner"), queryset=None)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args, user, plan: CallbackPlan | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        views = saved_view_list(user=user)
        if plan is not None:  # another administrator's private view stays the plan's choice
            views = views | SavedView.objects.filter(pk=plan.saved_view_id)
        self.fields["saved_view"].queryset = views
        self.fields["saved_view"].help_text = _(
            "The customers of this saved list, as you see them, get a call-back task every so many days."
        )
        self.fields["default_owner"].queryset = callback_plan_owners()
        self.fields["default_owner"].help_text = _("Takes the tasks of customers without an owner who can.")


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    for field, messages_ in (error.message_dict if hasattr(error, "error_dict") else {"": error.messages}).items():
        form.add_error(field if field in form.fields else None, messages_)


def _minute(value):
    return value.replace(second=0, microsecond=0) if value else value


def _customer(request, number: str) -> Customer | None:
    try:
        return customer_get(user=request.user, number=number) if number.strip() else None
    except (InvalidNumber, Http404):
        return None


# --- my follow-ups and the team's overdue ones


@page(perm=Perm.CUSTOMER_VIEW)
def follow_ups_view(request):
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "today"
    now = timezone.now()
    page_obj = Paginator(my_follow_ups(user=request.user, tab=tab, now=now), PAGE).get_page(request.GET.get("page"))
    counts = my_follow_up_tab_counts(user=request.user, now=now)
    context = {
        "nav": "follow_ups",
        "section": "mine",
        "tab": tab,
        "tabs": [(key, TAB_LABELS[key], counts.get(key)) for key in TABS],
        "page_obj": page_obj,
        "now": now,
        "can_log": has_perm(request.user, Perm.ACTIVITY_LOG),
    }
    return render(request, "activities/follow_ups.html", context)


@page(perm=Perm.PERFORMANCE_VIEW)
def follow_ups_overdue_view(request):
    now = timezone.now()
    try:
        owner_id = int(request.GET["owner"]) if request.GET.get("owner") else None
    except ValueError:
        owner_id = None
    overdue = team_overdue(user=request.user, owner_id=owner_id, now=now)
    context = {
        "nav": "follow_ups",
        "section": "overdue",
        "owners": overdue_by_owner(user=request.user, now=now),
        "owner_id": owner_id,
        "page_obj": Paginator(overdue, PAGE).get_page(request.GET.get("page")),
        "now": now,
        "can_log": has_perm(request.user, Perm.ACTIVITY_LOG),
    }
    return render(request, "activities/follow_ups_overdue.html", context)


# --- one follow-up


@page(perm=Perm.ACTIVITY_LOG)
def follow_up_create_view(request):
    params = request.POST if request.method == "POST" else request.GET
    customer = _customer(request, params.get("customer", ""))
    tomorrow = timezone.localtime() + timedelta(days=1)
    initial = {
        "customer": customer.number if customer else params.get("customer", ""),
        "due_at": tomorrow.replace(hour=10, minute=0, second=0, microsecond=0),
        "owner": follow_up_default_owner(customer=customer, actor=request.user) if customer else None,
    }
    form = FollowUpForm(request.POST or None, customer=customer, initial=initial)
    if request.method == "POST" and customer is None:
        form.add_error("customer", _("None of your customers has this number."))
    elif request.method == "POST" and form.is_valid():
        try:
            follow_up = follow_up_create(
                customer=customer,
                title=form.cleaned_data["title"],
                due_at=form.cleaned_data["due_at"],
                priority=form.cleaned_data["priority"],
                owner=form.cleaned_data["owner"],
                remind_at=form.reminder(),
                notes=form.cleaned_data["notes"],
                actor=request.user,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Follow-up “%(title)s” was added.") % {"title": follow_up.title})
            return redirect(safe_next(request, reverse("activities:follow_up", args=[follow_up.pk])))
    context = {"nav": "follow_ups", "form": form, "customer": customer, "next": params.get("next", "")}
    return render(request, "activities/follow_up_form.html", context)


@page(perm=Perm.ACTIVITY_LOG)
def follow_up_owners_view(request):
    """The owner choices for the customer number typed in the form (an htmx partial)."""
    customer = _customer(request, request.GET.get("customer", ""))
    owners = follow_up_owners(customer=customer) if customer else User.objects.none()
    default = follow_up_default_owner(customer=customer, actor=request.user) if customer else None
    context = {"owners": owners, "selected": default.pk if default else None, "found": customer is not None}
    return render(request, "activities/_owner_options.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def follow_up_view(request, pk: int):
    follow_up = follow_up_get(user=request.user, pk=pk)
    can_log = has_perm(request.user, Perm.ACTIVITY_LOG)
    editable = can_log and follow_up.status == FollowUp.Status.OPEN
    initial = {
        "title": follow_up.title,
        "due_at": _minute(follow_up.due_at),
        "priority": follow_up.priority,
        "owner": follow_up.owner_id,
        "remind_at": _minute(follow_up.remind_at),
        "no_reminder": follow_up.remind_at is None,
        "notes": follow_up.notes,
    }
    form = FollowUpForm(
        request.POST if request.method == "POST" else None,
        customer=follow_up.customer,
        follow_up=follow_up,
        initial=initial,
    )
    if request.method == "POST":
        require(request, Perm.ACTIVITY_LOG)
        if not editable:
            messages.error(request, _("Reopen this follow-up to change it."))
            return redirect("activities:follow_up", pk=follow_up.pk)
        if form.is_valid():
            plain = ("title", "due_at", "priority", "owner", "notes")
            changes = {name: form.cleaned_data[name] for name in plain if name in form.changed_data}
            if {"remind_at", "no_reminder"} & set(form.changed_data):
                reminder = form.reminder()
                changes["remind_at"] = (
                    form.cleaned_data["due_at"] - timedelta(minutes=settings.CIM_FOLLOW_UP_REMIND_BEFORE_MINUTES)
                    if reminder == "default"
                    else reminder
                )
            try:
                follow_up_update(follow_up=follow_up, actor=request.user, **changes)
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _("Your changes were saved."))
                return redirect("activities:follow_up", pk=follow_up.pk)
    context = {
        "nav": "follow_ups",
        "follow_up": follow_up,
        "form": form,
        "complete_form": CompleteForm(customer=follow_up.customer) if editable else None,
        "editable": editable,
        "can_log": can_log,
        "now": timezone.now(),
    }
    return render(request, "activities/follow_up.html", context)


def _back(request, follow_up: FollowUp):
    return redirect(safe_next(request, reverse("activities:follow_up", args=[follow_up.pk])))


@require_POST
@page(perm=Perm.ACTIVITY_LOG)
def follow_up_complete_view(request, pk: int):
    follow_up = follow_up_get(user=request.user, pk=pk)
    form = CompleteForm(request.POST, customer=follow_up.customer)
    interaction = form.cleaned_data["interaction"] if form.is_valid() else None
    try:
        follow_up_complete(follow_up=follow_up, actor=request.user, interaction=interaction)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("“%(title)s” is done.") % {"title": follow_up.title})
    return _back(request, follow_up)


@require_POST
@page(perm=Perm.ACTIVITY_LOG)
def follow_up_cancel_view(request, pk: int):
    follow_up = follow_up_get(user=request.user, pk=pk)
    try:
        follow_up_cancel(follow_up=follow_up, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("“%(title)s” was cancelled.") % {"title": follow_up.title})
    return _back(request, follow_up)


@require_POST
@page(perm=Perm.ACTIVITY_LOG)
def follow_up_reopen_view(request, pk: int):
    follow_up = follow_up_get(user=request.user, pk=pk)
    follow_up_reopen(follow_up=follow_up, actor=request.user)
    messages.success(request, _("“%(title)s” is open again.") % {"title": follow_up.title})
    return _back(request, follow_up)


@page(perm=Perm.CUSTOMER_VIEW)
def customer_follow_ups_view(request, number: str):
    """The customer page's follow-up card on its own (for htmx)."""
    customer = _customer(request, number)
    if customer is None:
        raise Http404(_("No customer with number %(number)s.") % {"number": number[:40]})
    context = {"customer": customer, "follow_ups": customer_follow_ups(user=request.user, customer=customer)}
    return render(request, "activities/_customer_follow_ups.html", context)


# --- call-back plans


@page(perm=Perm.SETTINGS_MANAGE)
def callback_plans_view(request):
    context = {"nav": "settings", "section": "callback_plans", "plans": callback_plan_list()}
    return render(request, "activities/callback_plans.html", context)


def _plan_form_page(request, plan: CallbackPlan | None):
    initial = {"default_owner": request.user.pk}
    if plan is not None:
        initial = {
            name: getattr(plan, name)
            for name in ("name", "saved_view", "every_days", "title", "priority", "default_owner", "is_active")
        }
    form = CallbackPlanForm(request.POST or None, user=request.user, plan=plan, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if plan is None:
                plan = callback_plan_create(actor=request.user, **form.cleaned_data)
            else:
                changes = {name: form.cleaned_data[name] for name in form.changed_data}
                plan = callback_plan_update(plan=plan, actor=request.user, **changes)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Call-back plan “%(name)s” was saved.") % {"name": plan.name})
            return redirect("activities:callback_plans")
    context = {"nav": "settings", "section": "callback_plans", "form": form, "plan": plan}
    return render(request, "activities/callback_plan_form.html", context)


@page(perm=Perm.SETTINGS_MANAGE)
def callback_plan_create_view(request):
    return _plan_form_page(request, None)


@page(perm=Perm.SETTINGS_MANAGE)
def callback_plan_edit_view(request, pk: int):
    return _plan_form_page(request, callback_plan_get(pk=pk))


@require_POST
@page(perm=Perm.SETTINGS_MANAGE)
def callback_plans_run_view(request):
    runs = callback_plans_run(actor=request.user)
    for run in runs:
        if run.error:
            messages.error(request, _("“%(name)s”: %(error)s") % {"name": run.name, "error": run.error})
    created = sum(run.created for run in runs)
    messages.success(
        request,
        ngettext("%(count)s call-back task was created.", "%(count)s call-back tasks were created.", created)
        % {"count": created},
    )
    return redirect("activities:callback_plans")


# --- notifications


@page
def notifications_view(request):
    page_obj = Paginator(notification_list(user=request.user), PAGE).get_page(request.GET.get("page"))
    return render(request, "activities/notifications.html", {"nav": "notifications", "page_obj": page_obj})


@require_POST
@page
def notification_read_view(request, pk: int):
    """Mark the notification read and go to what it is about."""
    notification = notification_get(user=request.user, pk=pk)
    notification_read(notification=notification, actor=request.user)
    target = notification.url
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("activities:notifications")


@require_POST
@page
def notifications_read_all_view(request):
    count = notifications_read_all(actor=request.user)
    messages.success(
        request,
        ngettext("%(count)s notification was marked read.", "%(count)s notifications were marked read.", count)
        % {"count": count},
    )
    return redirect("activities:notifications")
