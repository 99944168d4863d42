"""Message templates and messages as people manage them: writing templates, sending one by hand, reading the log.

Pages, the API and the CLI all call these; every read knows the user (a message shows only for a customer the user
may see), every write is checked and audited.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.automation.messaging import QueueResult, messages_queue, template_check
from cim.automation.models import Message, MessageTemplate
from cim.automation.models.messages import Channel
from cim.customers.models import Customer
from cim.customers.services import PermissionDenied
from cim.privacy.models import ConsentPurpose

TEMPLATE_FIELDS = ("name", "channel", "purpose", "language", "subject", "body", "html", "provider_template_id")
TEMPLATE_FIELDS += ("params", "is_active")


def _require(actor, perm: str = Perm.MESSAGE_SEND) -> None:
    if actor is not None and not has_perm(actor, perm):
        raise PermissionDenied(perm)


def _clean(data: Mapping) -> dict:
    """The template's fields, checked: choices, a body, templates that compile; per-field errors."""
    values = {key: data[key] for key in TEMPLATE_FIELDS if key in data and data[key] is not None}
    errors: dict[str, list[str]] = {}
    if "name" in values and not str(values["name"]).strip():
        errors["name"] = [_("This field is required.")]
    if "body" in values and not str(values["body"]).strip():
        errors["body"] = [_("This field is required.")]
    for key, choices in (
        ("channel", Channel.values),
        ("purpose", ConsentPurpose.values),
        ("language", ["zh-hans", "en"]),
    ):
        if key in values and values[key] not in choices:
            errors[key] = [_("Select a valid choice.")]
    try:
        template_check(
            subject=values.get("subject", ""),
            body=values.get("body", ""),
            html=values.get("html", ""),
            params=values.get("params", {}),
        )
    except ValidationError as error:
        for key, messages in error.message_dict.items():
            errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return values


def message_template_create(*, data: Mapping, actor) -> MessageTemplate:
    _require(actor)
    values = _clean(data)
    for required in ("name", "purpose", "body"):
        if required not in values:
            raise ValidationError({required: [_("This field is required.")]})
    with transaction.atomic():
        if MessageTemplate.objects.filter(name=values["name"], language=values.get("language", "zh-hans")).exists():
            raise ValidationError({"name": [_("A template of this name exists in this language.")]})
        template = MessageTemplate.objects.create(**values)
        audit_record(actor=actor, action="message_template.create", target=template, fields=sorted(values))
    return template


def message_template_update(*, template: MessageTemplate, data: Mapping, actor) -> MessageTemplate:
    _require(actor)
    values = _clean(data)
    changed = {key: value for key, value in values.items() if getattr(template, key) != value}
    if not changed:
        return template
    merged = {key: changed.get(key, getattr(template, key)) for key in ("subject", "body", "html", "params")}
    _clean(merged)
    with transaction.atomic():
        clash = MessageTemplate.objects.filter(
            name=changed.get("name", template.name), language=changed.get("language", template.language)
        ).exclude(pk=template.pk)
        if clash.exists():
            raise ValidationError({"name": [_("A template of this name exists in this language.")]})
        for key, value in changed.items():
            setattr(template, key, value)
        template.save()
        audit_record(actor=actor, action="message_template.update", target=template, fields=sorted(changed))
    return template


def message_template_list(*, channel: str = "", active: bool | None = None) -> QuerySet[MessageTemplate]:
    templates = MessageTemplate.objects.all()
    if channel:
        templates = templates.filter(channel=channel)
    if active is not None:
        templates = templates.filter(is_active=active)
    return templates


def message_template_get(*, pk: int) -> MessageTemplate:
    template = MessageTemplate.objects.filter(pk=pk).first()
    if template is None:
        raise Http404(_("No such message template."))
    return template


@dataclass(frozen=True)
class MessageFilter:
    customer: str = ""  # a customer number
    status: str = ""
    channel: str = ""
    origin: str = ""
    campaign: int | None = None
    template: int | None = None


def message_list(*, user, filters: MessageFilter | None = None) -> QuerySet[Message]:
    """Messages to the customers `user` may see, newest first."""
    filters = filters or MessageFilter()
    messages = Message.objects.filter(customer__in=Customer.objects.visible_to(user)).select_related(
        "customer", "template"
    )
    if filters.customer:
        messages = messages.filter(customer__number=filters.customer)
    if filters.status:
        messages = messages.filter(status=filters.status)
    if filters.channel:
        messages = messages.filter(channel=filters.channel)
    if filters.origin:
        messages = messages.filter(origin=filters.origin)
    if filters.campaign is not None:
        messages = messages.filter(campaign_id=filters.campaign)
    if filters.template is not None:
        messages = messages.filter(template_id=filters.template)
    return messages.order_by("-id")


def message_get(*, user, pk: int) -> Message:
    message = message_list(user=user).filter(pk=pk).first()
    if message is None:
        raise Http404(_("No such message."))
    return message


def message_send(
    *,
    template: MessageTemplate,
    customer_ids: Iterable[int] = (),
    segment=None,
    extra_context: Mapping | None = None,
    key: str = "",
    actor,
) -> QueueResult:
    """Send `template` by hand to customers the actor may see (given, or a segment's members), through the same
    checks as every message. `key` makes a retry of the same send a no-op; without one each call is a new send."""
    _require(actor)
    if not template.is_active:
        raise ValidationError({"template": [_("This template is not active.")]})
    visible = Customer.objects.visible_to(actor) if actor is not None else Customer.objects.all()
    wanted = set(customer_ids)
    if segment is not None:
        wanted |= set(segment.members.values_list("customer_id", flat=True))
    ids = list(visible.filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted and not ids:
        raise ValidationError({"customers": [_("None of these customers is yours to message.")]})
    prefix = f"manual:{key or uuid.uuid4().hex}:template:{template.pk}"
    return messages_queue(
        customer_ids=ids,
        template=template,
        key_prefix=prefix,
        extra_context=extra_context,
        origin="manual",
        actor=actor,
    )
