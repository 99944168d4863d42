"""Automation rule pages: the list, the editor (trigger → conditions → steps), a rule with its runs and a dry run.
Views validate and call services."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.models import User
from cim.accounts.roles import Perm
from cim.automation.calendar import CUSTOMER_DATE_FIELDS
from cim.automation.models import MessageTemplate, Rule, RuleRun, WebhookEndpoint
from cim.automation.rules import program_compile, rule_dry_run
from cim.automation.rules_definition import ACTIONS, DATE_FIELDS, DATE_KINDS, FIELD_KINDS, SETTABLE_FIELDS, TRIGGERS
from cim.automation.rules_selectors import rule_get, rule_list, rule_runs
from cim.automation.rules_services import rule_activate, rule_create, rule_delete, rule_update
from cim.core.views import page
from cim.customers import choices as c
from cim.customers.models import Customer
from cim.customers.schemas import CustomerInput
from cim.segments.models import Segment
from cim.segments.rules import field_catalogue
from cim.segments.views import _catalogue as condition_catalogue


@page(perm=Perm.AUTOMATION_MANAGE)
def rule_list_view(request):
    return render(request, "automation/rules/list.html", {"nav": "automation", "rules": rule_list()})


def _editor_catalogue() -> dict:
    """What the step editor offers, labelled in the user's language."""
    fields = field_catalogue()
    settable = []
    for key in SETTABLE_FIELDS:
        field = Customer._meta.get_field(key)
        choices = [[value, str(label)] for value, label in field.choices] if field.choices else None
        settable.append({"key": key, "label": str(field.verbose_name), "choices": choices})
    return {
        "triggers": [{"event": t.event, "label": str(t.label), "options": list(t.options)} for t in TRIGGERS.values()],
        "date_kinds": [[key, str(label)] for key, label in DATE_KINDS.items()],
        "date_fields": [[key, str(fields[key].label)] for key in DATE_FIELDS],
        "field_kinds": list(FIELD_KINDS),
        "customer_date_fields": [[key, str(fields[key].label)] for key in CUSTOMER_DATE_FIELDS],
        "customer_fields": [[key, key] for key in CustomerInput.model_fields],
        "actions": [[key, str(label)] for key, label in ACTIONS.items()],
        "settable": settable,
        "stages": [[value, str(label)] for value, label in c.LifecycleStage.choices],
        "owners": [[u.pk, str(u)] for u in User.objects.filter(is_active=True).order_by("username")],
        "lists": [[s.pk, s.name] for s in Segment.objects.filter(kind=Segment.Kind.STATIC)],
        "segments": [[s.pk, s.name] for s in Segment.objects.all()],
        "templates": [
            [name, f"{name} ({channel})"]
            for name, channel in MessageTemplate.objects.filter(is_active=True)
            .order_by("name")
            .values_list("name", "channel")
            .distinct()
        ],
        "endpoints": [[e.pk, e.url] for e in WebhookEndpoint.objects.order_by("pk")],
        "text": {
            "template": _("Message template"),
            "endpoint": _("Webhook endpoint"),
            "event_type": _("Event type"),
            "add_step": _("Add a step"),
            "remove": _("Remove"),
            "up": _("Move up"),
            "down": _("Move down"),
            "then": _("Then"),
            "else": _("Else"),
            "if": _("If all of these hold"),
            "add_condition": _("Add a condition"),
            "any": _("(any)"),
            "tag": _("Tag"),
            "field": _("Field"),
            "value": _("Value"),
            "stage": _("Stage"),
            "owner": _("Owner"),
            "title": _("Task title"),
            "due_days": _("Due in days"),
            "list": _("Static list"),
            "segment": _("Segment"),
            "days": _("Days after (negative: before)"),
            "date_kind": _("Which date"),
            "date_field": _("Date field"),
            "wait_days": _("Wait days"),
            "wait_until": _("or until the date in"),
            "name": _("Event name"),
            "survey": _("Survey id"),
            "form": _("Form id"),
        },
    }


def _form(request, rule: Rule | None):
    def posted(name: str, default):
        return request.POST.get(name, default)

    values = {
        "name": posted("name", rule.name if rule else ""),
        "description": posted("description", rule.description if rule else ""),
        "max_depth": posted("max_depth", rule.max_depth if rule else 3),
        "rate_minutes": posted("rate_minutes", rule.rate_minutes if rule else 60),
    }
    texts = {
        "trigger": posted("trigger", json.dumps(rule.trigger if rule else {"event": "customer.tag_added"})),
        "conditions": posted("rules", json.dumps(rule.conditions if rule else {"match": "all", "rules": []})),
        "steps": posted("steps", json.dumps(rule.steps if rule else [])),
    }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        parsed = {}
        for name, text in texts.items():
            try:
                parsed[name] = json.loads(text or "null")
            except ValueError:
                errors[name] = [_("This part could not be read; build it again.")]
        if not errors:
            try:
                if rule is None:
                    rule = rule_create(actor=request.user, **values, **parsed)
                else:
                    rule = rule_update(rule=rule, actor=request.user, **values, **parsed)
            except ValidationError as error:
                errors = error.message_dict
            else:
                messages.success(request, _("Rule saved."))
                return redirect("automation:rule", rule.pk)
    step_errors = {key: messages_ for key, messages_ in errors.items() if key.startswith("steps")}
    trigger_errors = {key: messages_ for key, messages_ in errors.items() if key.startswith("trigger")}
    context = {
        "nav": "automation",
        "rule": rule,
        "values": values,
        "texts": texts,
        "errors": errors,
        "step_errors": step_errors,
        "trigger_errors": trigger_errors,
        "catalogue": condition_catalogue(),
        "editor": _editor_catalogue(),
    }
    return render(request, "automation/rules/form.html", context, status=400 if errors else 200)


@page(perm=Perm.AUTOMATION_MANAGE)
def rule_create_view(request):
    return _form(request, None)


@page(perm=Perm.AUTOMATION_MANAGE)
def rule_edit_view(request, pk: int):
    return _form(request, rule_get(pk=pk))


# Shown on their own lines (a branch's steps) or as the step's name, not among its settings.
_NESTED = {"action", "then", "else", "if"}


@page(perm=Perm.AUTOMATION_MANAGE)
def rule_detail_view(request, pk: int):
    rule = rule_get(pk=pk)
    steps = [
        (i.label, ACTIONS[i.step["action"]], ", ".join(f"{k}={v}" for k, v in i.step.items() if k not in _NESTED))
        for i in program_compile(rule.steps)
        if i.step["action"] != "jump"
    ]
    status = request.GET.get("status") or None
    runs = list(
        rule_runs(user=request.user, rule=rule, status=status if status in RuleRun.Status.values else None)[:100]
    )
    dry, segment_id = None, request.GET.get("segment", "")
    if segment_id.isdigit():
        segment = Segment.objects.filter(pk=int(segment_id)).first()
        if segment is None:
            messages.error(request, _("Choose an existing segment."))
        else:
            # A read: the dry run writes nothing.
            dry = rule_dry_run(rule=rule, segment=segment, user=request.user, limit=50)
    context = {
        "nav": "automation",
        "rule": rule,
        "steps": steps,
        "catalogue": condition_catalogue(),
        "runs": runs,
        "statuses": RuleRun.Status.choices,
        "status": status,
        "segments": Segment.objects.only("pk", "name"),
        "segment_id": segment_id,
        "dry": dry,
        "trigger_label": TRIGGERS.get(rule.trigger.get("event"), TRIGGERS["date"]).label,
        "actions": {key: str(label) for key, label in ACTIONS.items()},
    }
    return render(request, "automation/rules/detail.html", context)


@require_POST
@page(perm=Perm.AUTOMATION_MANAGE)
def rule_activate_view(request, pk: int):
    rule = rule_get(pk=pk)
    active = request.POST.get("active") == "1"
    rule_activate(rule=rule, actor=request.user, active=active)
    messages.success(request, _("The rule is on.") if active else _("The rule is off."))
    return redirect("automation:rule", pk)


@require_POST
@page(perm=Perm.AUTOMATION_MANAGE)
def rule_delete_view(request, pk: int):
    rule_delete(rule=rule_get(pk=pk), actor=request.user)
    messages.success(request, _("Rule deleted."))
    return redirect("automation:rules")
