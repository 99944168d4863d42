"""The webhooks pages (administrators): endpoints (list, new, edit, test, rotate the secret, switch on and off),
the delivery log with filters and replays, and the event catalogue (every user)."""

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from cim.accounts.models import User
from cim.accounts.roles import ROLE_SCOPE, Perm, Role, Scope
from cim.automation.events import CATALOGUE
from cim.automation.models import WebhookDelivery, WebhookEndpoint
from cim.automation.webhook_selectors import (
    DeliveryFilter,
    catalogue,
    delivery_get,
    delivery_list,
    endpoint_get,
    endpoint_list,
    example_payload,
)
from cim.automation.webhook_sender import webhook_test_send
from cim.automation.webhooks import (
    deliveries_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_secret_rotate,
)
from cim.core.views import page

PAGE_SIZE = 50


def _pretty(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, indent=2)


SECRET_KEY = "webhook_secret"


class EndpointForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500, assume_scheme="https")
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    all_events = forms.BooleanField(label=gettext_lazy("All event types (including those added later)"), required=False)
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Event types"),
        choices=[(name, name) for name in CATALOGUE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    scope_role = forms.ChoiceField(
        label=gettext_lazy("Scope: a role"),
        required=False,
        help_text=gettext_lazy("Payloads carry what this role may see; or choose a user below."),
    )
    scope_user = forms.ModelChoiceField(
        label=gettext_lazy("Scope: a user"),
        queryset=User.objects.filter(is_active=True).order_by("username"),
        to_field_name="username",
        required=False,
        help_text=gettext_lazy("Their record scope and field access apply to every payload."),
    )
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        roles = [(value, label) for value, label in Role.choices if ROLE_SCOPE.get(value) == Scope.ALL]
        self.fields["scope_role"].choices = [("", "—"), *roles]

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["scope_user"] = data["scope_user"] or None
        return data


def _initial(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "all_events": endpoint.all_events,
        "event_types": endpoint.event_types,
        "scope_role": endpoint.scope_role,
        "scope_user": endpoint.scope_user.username if endpoint.scope_user_id else None,
        "is_active": endpoint.is_active,
    }


def _save(request, form: EndpointForm, endpoint: WebhookEndpoint | None):
    if not form.is_valid():
        return None
    try:
        if endpoint is None:
            return webhook_endpoint_create(data=form.values(), actor=request.user)
        return webhook_endpoint_update(endpoint=endpoint, data=form.values(), actor=request.user)
    except ValidationError as error:
        for name, texts in error.message_dict.items():
            form.add_error(name if name in form.fields else None, texts)
        return None


@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_list_view(request):
    return render(request, "automation/webhooks/list.html", {"nav": "webhooks", "endpoints": list(endpoint_list())})


@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_create_view(request):
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and (saved := _save(request, form, None)):
        endpoint, secret = saved
        # Shown on the next page once, then never again in full.
        request.session[SECRET_KEY] = {"endpoint": endpoint.pk, "secret": secret}
        messages.success(request, _("Endpoint saved. Copy its signing secret now: it is shown only this once."))
        return redirect("automation:webhook_detail", pk=endpoint.pk)
    return render(request, "automation/webhooks/form.html", {"nav": "webhooks", "form": form, "endpoint": None})


@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_edit_view(request, pk: int):
    endpoint = endpoint_get(pk)
    form = EndpointForm(request.POST or None, initial=_initial(endpoint))
    if request.method == "POST" and _save(request, form, endpoint):
        messages.success(request, _("Endpoint saved."))
        return redirect("automation:webhook_detail", pk=endpoint.pk)
    return render(request, "automation/webhooks/form.html", {"nav": "webhooks", "form": form, "endpoint": endpoint})


@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_detail_view(request, pk: int):
    endpoint = endpoint_get(pk)
    shown = request.session.get(SECRET_KEY)
    secret = None
    if shown and shown.get("endpoint") == endpoint.pk:
        secret = request.session.pop(SECRET_KEY)["secret"]
    context = {
        "nav": "webhooks",
        "endpoint": endpoint,
        "secret": secret,
        "deliveries": list(delivery_list(filters=DeliveryFilter(endpoint=endpoint.pk))[:20]),
    }
    return render(request, "automation/webhooks/detail.html", context)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_test_view(request, pk: int):
    delivery = webhook_test_send(endpoint=endpoint_get(pk), actor=request.user)
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        messages.success(
            request,
            _("The test message was received: HTTP %(code)s in %(ms)s ms.")
            % {"code": delivery.last_status_code, "ms": delivery.response_ms},
        )
    else:
        messages.error(
            request, _("The test message failed: %(error)s. It will be retried.") % {"error": delivery.last_error}
        )
    return redirect("automation:webhook_detail", pk=pk)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_rotate_view(request, pk: int):
    endpoint = endpoint_get(pk)
    secret = webhook_secret_rotate(endpoint=endpoint, actor=request.user)
    request.session[SECRET_KEY] = {"endpoint": endpoint.pk, "secret": secret}
    messages.success(
        request,
        _("New signing secret made. The previous one signs beside it until %(until)s.")
        % {"until": endpoint.previous_secret_expires_at.strftime("%Y-%m-%d %H:%M")},
    )
    return redirect("automation:webhook_detail", pk=pk)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_toggle_view(request, pk: int):
    endpoint = endpoint_get(pk)
    webhook_endpoint_update(endpoint=endpoint, data={"is_active": not endpoint.is_active}, actor=request.user)
    messages.success(request, _("Endpoint switched on.") if endpoint.is_active else _("Endpoint switched off."))
    return redirect("automation:webhook_detail", pk=pk)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def webhook_delete_view(request, pk: int):
    webhook_endpoint_delete(endpoint=endpoint_get(pk), actor=request.user)
    messages.success(request, _("Endpoint deleted."))
    return redirect("automation:webhook_list")


class DeliveryFilterForm(forms.Form):
    endpoint = forms.ModelChoiceField(label=gettext_lazy("Endpoint"), queryset=WebhookEndpoint.objects, required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), choices=[("", "—"), *WebhookDelivery.Status.choices], required=False
    )
    event_type = forms.CharField(label=gettext_lazy("Event type"), max_length=60, required=False)
    since = forms.DateTimeField(
        label=gettext_lazy("From"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        label=gettext_lazy("Until"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def filters(self, before: int | None = None) -> DeliveryFilter:
        data = self.cleaned_data if self.is_valid() else {}
        endpoint = data.get("endpoint")
        return DeliveryFilter(
            endpoint=endpoint.pk if endpoint else None,
            status=data.get("status", ""),
            event_type=data.get("event_type", ""),
            since=data.get("since"),
            until=data.get("until"),
            before=before,
        )


@page(perm=Perm.WEBHOOK_MANAGE)
def delivery_list_view(request):
    form = DeliveryFilterForm(request.GET or None)
    before = request.GET.get("before", "")
    filters = form.filters(int(before) if before.isdigit() else None)
    deliveries = list(delivery_list(filters=filters)[:PAGE_SIZE])
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "nav": "webhooks",
        "form": form,
        "deliveries": deliveries,
        "next_before": deliveries[-1].pk if len(deliveries) == PAGE_SIZE else None,
        "query": query.urlencode(),
    }
    return render(request, "automation/webhooks/deliveries.html", context)


@page(perm=Perm.WEBHOOK_MANAGE)
def delivery_detail_view(request, pk: int):
    delivery = delivery_get(pk)
    context = {"nav": "webhooks", "delivery": delivery, "body": _pretty(delivery.payload)}
    return render(request, "automation/webhooks/delivery.html", context)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def delivery_replay_view(request, pk: int):
    deliveries_replay(actor=request.user, deliveries=[delivery_get(pk)])
    messages.success(request, _("The delivery is sent again, with the same webhook-id."))
    return redirect("automation:webhook_delivery", pk=pk)


@require_POST
@page(perm=Perm.WEBHOOK_MANAGE)
def deliveries_replay_view(request):
    """Replay every failed or given-up delivery the filters select (their status filter aside)."""
    form = DeliveryFilterForm(request.POST)
    filters = form.filters()
    endpoint = endpoint_get(filters.endpoint) if filters.endpoint else None
    count = deliveries_replay(actor=request.user, endpoint=endpoint, since=filters.since, until=filters.until)
    messages.success(request, _("%(count)s failed deliveries are sent again.") % {"count": count})
    return redirect("automation:webhook_deliveries")


@page
def event_catalogue_view(request):
    """Every event type with its version, meaning, data and an example payload (every user may read it)."""
    events = [{**event, "example": _pretty(example_payload(event["name"]))} for event in catalogue()]
    return render(request, "automation/webhooks/catalogue.html", {"nav": "webhooks", "events": events})
