"""Service pages: ticket lists (all, mine), a ticket's conversation with its SLA clocks and actions, opening a
ticket, the survey results and the SLA settings. Views validate and call services; they never write themselves."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from pydantic import ValidationError as PydanticValidationError

from cim.accounts.models import Team
from cim.accounts.roles import Perm, has_perm
from cim.core.api_errors import _pydantic_detail
from cim.core.views import page
from cim.customers.selectors import InvalidNumber, customer_get
from cim.service import business_hours, conf
from cim.service import choices as c
from cim.service.filters import SurveyFilter, TicketFilter
from cim.service.forms import AssignForm, EscalateForm, MessageForm, SlaPolicyForm, SurveySendForm, TicketForm
from cim.service.selectors import (
    REPORT_BY,
    sla_policies,
    survey_list,
    survey_report,
    ticket_get,
    ticket_handlers,
    ticket_list,
    ticket_messages,
    ticket_sla_counts,
)
from cim.service.services import (
    sla_policy_update,
    ticket_assign,
    ticket_create,
    ticket_escalate,
    ticket_note,
    ticket_reply,
    ticket_transition,
)
from cim.service.sla import ticket_clocks
from cim.service.surveys import survey_send

PER_PAGE = 50
RECENT_ANSWERS = 30


def can_read_surveys(user) -> bool:
    return has_perm(user, Perm.SURVEY_MANAGE) or has_perm(user, Perm.PERFORMANCE_VIEW)


def parse(schema, params, *, fixed: dict | None = None):
    """A filter schema from a query string: invalid values are dropped and described, never a 500."""
    data = {name: value.strip() for name in schema.model_fields if (value := params.get(name, "")).strip()}
    data.update(fixed or {})
    try:
        return schema.model_validate(data), []
    except PydanticValidationError as error:
        problems, bad = [], set()
        for detail in error.errors():
            name = str(detail["loc"][0]) if detail.get("loc") else ""
            bad.add(name)
            problems.append(
                _("Ignored the filter “%(field)s”: %(message)s")
                % {"field": name, "message": _pydantic_detail(detail)["message"]}
            )
        return schema.model_validate({k: v for k, v in data.items() if k not in bad}), problems


def _flash_errors(request, error: ValidationError) -> None:
    messages.error(request, " ".join(error.messages))


def _ticket_or_404(request, number: str):
    return ticket_get(user=request.user, number=number)


def _list(request, *, mine: bool):
    filters, problems = parse(TicketFilter, request.GET, fixed={"assignee": "me"} if mine else None)
    now = timezone.now()
    tickets = ticket_list(user=request.user, filters=filters, now=now)
    page_obj = Paginator(tickets, PER_PAGE).get_page(request.GET.get("page"))
    for ticket in page_obj:
        ticket.clocks = ticket_clocks(ticket, now=now)
    context = {
        "nav": "service",
        "section": "mine" if mine else "tickets",
        "mine": mine,
        "filters": filters,
        "filter_errors": problems,
        "page_obj": page_obj,
        "counts": ticket_sla_counts(user=request.user, filters=filters, now=now),
        "can_handle": has_perm(request.user, Perm.TICKET_HANDLE),
    }
    if request.htmx and request.htmx.target == "ticket-results" and not request.htmx.history_restore_request:
        response = render(request, "service/_ticket_results.html", context)
    else:
        context.update(
            {
                "statuses": [("open", _("Open")), *c.Status.choices, ("any", _("Any"))],
                "priorities": c.Priority.choices,
                "categories": c.Category.choices,
                "channels": c.Channel.choices,
                "handlers": ticket_handlers(),
                "teams": Team.objects.order_by("name"),
            }
        )
        response = render(request, "service/ticket_list.html", context)
    response["Vary"] = "HX-Request"
    return response


@page(perm=Perm.CUSTOMER_VIEW)
def ticket_list_view(request):
    return _list(request, mine=False)


@page(perm=Perm.CUSTOMER_VIEW)
def my_tickets_view(request):
    return _list(request, mine=True)


@page(perm=Perm.TICKET_HANDLE)
def ticket_create_view(request):
    customer = None
    form = TicketForm(request.POST or None, initial={"customer": request.GET.get("customer", "")})
    number = request.POST.get("customer") if request.method == "POST" else request.GET.get("customer")
    if number:
        try:
            customer = customer_get(user=request.user, number=number)
        except (InvalidNumber, Http404) as error:
            if request.method == "POST":
                form.add_error("customer", str(error))
    if request.method == "POST" and form.is_valid() and customer is not None:
        data = form.cleaned_data
        try:
            ticket = ticket_create(
                customer=customer,
                subject=data["subject"],
                description=data["description"],
                channel=data["channel"],
                category=data["category"],
                priority=data["priority"],
                assignee=data["assignee"],
                **({"team": data["team"]} if data["team"] else {}),
                actor=request.user,
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, _("Ticket %(number)s was opened.") % {"number": ticket.number})
            return redirect("service:ticket_detail", number=ticket.number)
    context = {"nav": "service", "section": "new", "form": form, "customer": customer}
    return render(request, "service/ticket_form.html", context)


@page(perm=Perm.CUSTOMER_VIEW)
def ticket_detail_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    can_handle = has_perm(request.user, Perm.TICKET_HANDLE)
    transitions = [(status, c.Status(status).label) for status in c.TRANSITIONS[ticket.status]]
    context = {
        "nav": "service",
        "ticket": ticket,
        "conversation": ticket_messages(ticket=ticket),
        "clocks": ticket_clocks(ticket, now=timezone.now()),
        "surveys": ticket.surveys.order_by("-created_at"),
        "can_handle": can_handle,
        "can_survey": has_perm(request.user, Perm.SURVEY_MANAGE),
        "transitions": transitions,
        # Resolving, or closing a ticket never resolved, asks how it was resolved.
        "code_statuses": {c.Status.RESOLVED, *([c.Status.CLOSED] if ticket.resolved_at is None else [])},
        "resolution_codes": c.ResolutionCode.choices,
        "message_form": MessageForm(initial={"email_customer": True}),
        "assign_form": AssignForm(initial={"assignee": ticket.assignee_id, "team": ticket.team_id}),
        "escalate_form": EscalateForm(),
        "survey_form": SurveySendForm(),
        "has_email": ticket.customer.emails.filter(is_primary=True).exists(),
    }
    return render(request, "service/ticket_detail.html", context)


def _back(ticket):
    return redirect("service:ticket_detail", number=ticket.number)


@require_POST
@page(perm=Perm.TICKET_HANDLE)
def ticket_message_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    form = MessageForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write something first."))
        return _back(ticket)
    data = form.cleaned_data
    try:
        if data["kind"] == c.MessageKind.REPLY:
            ticket_reply(
                ticket=ticket,
                body=data["body"],
                actor=request.user,
                email_customer=data["email_customer"],
                status=data["then"] or None,
            )
            messages.success(request, _("Your reply was added."))
        else:
            ticket_note(ticket=ticket, body=data["body"], actor=request.user)
            messages.success(request, _("Your internal note was added."))
    except ValidationError as error:
        _flash_errors(request, error)
    return _back(ticket)


@require_POST
@page(perm=Perm.TICKET_HANDLE)
def ticket_transition_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    try:
        ticket_transition(
            ticket=ticket,
            status=request.POST.get("status", ""),
            resolution_code=request.POST.get("resolution_code", ""),
            actor=request.user,
        )
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("The ticket is now “%(status)s”.") % {"status": ticket.get_status_display()})
    return _back(ticket)


@require_POST
@page(perm=Perm.TICKET_HANDLE)
def ticket_assign_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose someone who handles tickets."))
        return _back(ticket)
    data = form.cleaned_data
    try:
        ticket_assign(
            ticket=ticket,
            assignee=data["assignee"],
            **({"team": data["team"]} if data["team"] else {}),
            actor=request.user,
        )
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("The assignment was saved."))
    return _back(ticket)


@require_POST
@page(perm=Perm.TICKET_HANDLE)
def ticket_escalate_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    form = EscalateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a reason for the escalation."))
        return _back(ticket)
    data = form.cleaned_data
    handover = {"assignee": data["assignee"]} if data["assignee"] else {}
    if data["team"]:
        handover["team"] = data["team"]
    try:
        ticket_escalate(ticket=ticket, reason=data["reason"], actor=request.user, **handover)
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(
            request, _("The ticket was escalated to level %(level)s.") % {"level": ticket.escalation_level}
        )
    return _back(ticket)


@require_POST
@page(perm=Perm.SURVEY_MANAGE)
def ticket_survey_view(request, number: str):
    ticket = _ticket_or_404(request, number)
    form = SurveySendForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a survey and how to send it."))
        return _back(ticket)
    try:
        survey_send(
            customer=ticket.customer,
            kind=form.cleaned_data["kind"],
            channel=form.cleaned_data["channel"],
            ticket=ticket,
            actor=request.user,
        )
    except ValidationError as error:
        _flash_errors(request, error)
    else:
        messages.success(request, _("The survey is on its way to the customer."))
    return _back(ticket)


@page
def survey_report_view(request):
    if not can_read_surveys(request.user):
        raise PermissionDenied(_("Your role does not allow this."))
    by = request.GET.get("by", "month")
    by = by if by in REPORT_BY else "month"
    fixed = {}
    if "since" not in request.GET:
        today = timezone.localdate()
        fixed["since"] = today.replace(year=today.year - 1, day=1)
    filters, problems = parse(SurveyFilter, request.GET, fixed=fixed)
    report = survey_report(user=request.user, filters=filters, by=by)
    chart = [{"label": r.label, "csat": r.csat, "nps": r.nps} for r in report.rows]
    context = {
        "nav": "service",
        "section": "surveys",
        "filters": filters,
        "filter_errors": problems,
        "by": by,
        "by_choices": list(REPORT_BY.items()),
        "kinds": c.SurveyKind.choices,
        "channels": c.SurveyChannel.choices,
        "teams": Team.objects.order_by("name"),
        "report": report,
        "chart": chart,
        "answers": survey_list(user=request.user, filters=filters)[:RECENT_ANSWERS],
    }
    return render(request, "service/survey_report.html", context)


@page(perm=Perm.SETTINGS_MANAGE)
def sla_settings_view(request):
    policies = sla_policies()
    forms = [
        (
            policy,
            SlaPolicyForm(
                request.POST or None,
                prefix=policy.priority,
                initial={
                    "first_response_minutes": policy.first_response_minutes,
                    "resolution_minutes": policy.resolution_minutes,
                    "business_hours_only": policy.business_hours_only,
                },
            ),
        )
        for policy in policies
    ]
    if request.method == "POST" and all(form.is_valid() for _policy, form in forms):
        try:
            for policy, form in forms:
                sla_policy_update(policy=policy, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _flash_errors(request, error)
        else:
            messages.success(request, _("The SLA targets were saved. New tickets follow them."))
            return redirect("service:sla_settings")
    year = timezone.localdate().year
    context = {
        "nav": "settings",
        "section": "sla",
        "forms": forms,
        "hours": conf.business_hours(),
        "time_zone": settings.TIME_ZONE,
        "days": conf.business_days(),
        "holidays": conf.business_holidays(),
        "year": year,
        "special_days": business_hours.special_days(year),
    }
    return render(request, "service/sla_settings.html", context)
