"""Message pages: the message log, templates with a preview per customer, sending a template by hand.
Views validate and call services (cim.automation.message_admin)."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from ninja.errors import HttpError

from cim.accounts.roles import Perm, has_perm
from cim.automation.message_admin import (
    MessageFilter,
    message_list,
    message_send,
    message_template_create,
    message_template_get,
    message_template_list,
    message_template_update,
)
from cim.automation.message_receipts import receipt_urls
from cim.automation.messaging import template_preview
from cim.automation.models.messages import Channel, MessageStatus
from cim.core.pagination import keyset_page
from cim.core.views import page
from cim.customers.models import Customer
from cim.privacy.models import ConsentPurpose
from cim.segments.models import Segment

PAGE_SIZE = 50
VARIABLES = (
    "{{ customer.display_name }} {{ customer.given_name }} {{ customer.company }} … "
    "{% for p in recommendations %}{{ p.name }}{% endfor %}"
)
PARAMS_EXAMPLE = '{"name": "{{ customer.display_name }}"}'


@page(perm=Perm.CUSTOMER_VIEW)
def message_list_view(request):
    filters = MessageFilter(
        customer=request.GET.get("customer", "").strip(),
        status=request.GET.get("status", "") if request.GET.get("status") in MessageStatus.values else "",
        channel=request.GET.get("channel", "") if request.GET.get("channel") in Channel.values else "",
        template=int(request.GET["template"]) if request.GET.get("template", "").isdigit() else None,
    )
    try:
        items, next_cursor = keyset_page(
            message_list(user=request.user, filters=filters), cursor=request.GET.get("cursor"), limit=PAGE_SIZE
        )
    except (ValidationError, HttpError):  # a cursor from an old or edited link: start again from the newest
        items, next_cursor = keyset_page(message_list(user=request.user, filters=filters), cursor=None, limit=PAGE_SIZE)
    context = {
        "nav": "messages",
        "items": items,
        "next_cursor": next_cursor,
        "filters": filters,
        "statuses": MessageStatus.choices,
        "channels": Channel.choices,
        "can_send": has_perm(request.user, Perm.MESSAGE_SEND),
    }
    return render(request, "automation/messages/list.html", context)


@page(perm=Perm.MESSAGE_SEND)
def template_list_view(request):
    context = {"nav": "messages", "templates": message_template_list()}
    if has_perm(request.user, Perm.SETTINGS_MANAGE):  # the URLs hold the keys the gateways authenticate with
        context["receipt_urls"] = receipt_urls()
    return render(request, "automation/messages/templates.html", context)


def _form_values(post) -> dict:
    params_text = post.get("params", "").strip()
    values = {key: post.get(key, "") for key in ("name", "channel", "purpose", "language", "subject", "body", "html")}
    values["provider_template_id"] = post.get("provider_template_id", "").strip()
    values["is_active"] = post.get("is_active") == "on"
    values["params_text"] = params_text
    return values


def _parsed(values: dict) -> dict:
    data = {k: v for k, v in values.items() if k != "params_text"}
    try:
        params = json.loads(values["params_text"]) if values["params_text"] else {}
    except ValueError:
        message = _("Write the parameters as a JSON object, e.g. %(example)s.") % {"example": PARAMS_EXAMPLE}
        raise ValidationError({"params": [message]}) from None
    data["params"] = params
    return data


def _form_context(template, values, errors) -> dict:
    return {
        "nav": "messages",
        "template": template,
        "values": values,
        "errors": errors,
        "channels": Channel.choices,
        "purposes": ConsentPurpose.choices,
        "languages": [("zh-hans", "简体中文"), ("en", "English")],
        "segments": Segment.objects.only("pk", "name").order_by("name"),
        "variables": VARIABLES,
        "params_example": PARAMS_EXAMPLE,
    }


@page(perm=Perm.MESSAGE_SEND)
def template_create_view(request):
    values = {"channel": Channel.EMAIL, "purpose": ConsentPurpose.MARKETING, "language": "zh-hans", "is_active": True}
    errors: dict = {}
    if request.method == "POST":
        values = _form_values(request.POST)
        try:
            template = message_template_create(data=_parsed(values), actor=request.user)
            messages.success(request, _("The template was saved."))
            return redirect("automation:message_template", template.pk)
        except ValidationError as error:
            errors = error.message_dict
    context = _form_context(None, values, errors)
    return render(request, "automation/messages/template_form.html", context, status=400 if errors else 200)


@page(perm=Perm.MESSAGE_SEND)
def template_edit_view(request, pk: int):
    template = message_template_get(pk=pk)
    values = {
        **{key: getattr(template, key) for key in ("name", "channel", "purpose", "language", "subject", "body")},
        "html": template.html,
        "provider_template_id": template.provider_template_id,
        "is_active": template.is_active,
        "params_text": json.dumps(template.params, ensure_ascii=False) if template.params else "",
    }
    errors: dict = {}
    if request.method == "POST":
        values = _form_values(request.POST)
        try:
            message_template_update(template=template, data=_parsed(values), actor=request.user)
            messages.success(request, _("The template was saved."))
            return redirect("automation:message_template", template.pk)
        except ValidationError as error:
            errors = error.message_dict
    context = _form_context(template, values, errors)
    return render(request, "automation/messages/template_form.html", context, status=400 if errors else 200)


@page(perm=Perm.MESSAGE_SEND)
@require_POST
def template_preview_view(request, pk: int):
    """The message one customer would get (htmx partial)."""
    template = message_template_get(pk=pk)
    number = request.POST.get("customer", "").strip()
    customer = Customer.objects.visible_to(request.user).filter(number=number).first()
    context = {"error": "", "rendered": None}
    if customer is None:
        context["error"] = _("No customer of yours has this number.")
    else:
        try:
            context["rendered"] = template_preview(template=template, customer=customer)
            context["customer"] = customer
        except ValidationError as error:
            context["error"] = " ".join(error.messages)
    return render(request, "automation/messages/_preview.html", context)


@page(perm=Perm.MESSAGE_SEND)
@require_POST
def template_send_view(request, pk: int):
    template = message_template_get(pk=pk)
    numbers = [n for n in request.POST.get("customers", "").replace(",", " ").split() if n]
    segment = None
    if request.POST.get("segment"):
        segment = (
            Segment.objects.filter(pk=request.POST["segment"]).first() if request.POST["segment"].isdigit() else None
        )
        if segment is None:
            raise Http404(_("No such segment."))
    ids = list(Customer.objects.visible_to(request.user).filter(number__in=numbers).values_list("pk", flat=True))
    if not ids and segment is None:
        messages.error(request, _("Give customer numbers of yours or a segment."))
        return redirect("automation:message_template", template.pk)
    try:
        result = message_send(template=template, customer_ids=ids, segment=segment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("automation:message_template", template.pk)
    suppressed = sum(result.suppressed.values())
    messages.success(
        request,
        _("%(queued)s messages queued, %(suppressed)s not sent (see the message log for why).")
        % {"queued": result.queued, "suppressed": suppressed},
    )
    return redirect(reverse("automation:message_list") + f"?template={template.pk}")
