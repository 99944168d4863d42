"""A small world in which every path of the REST API names something that exists: the user's own customer and
its orders, tickets, follow-ups, privacy entries, campaigns, webhooks and the rest (for the role matrix and the
fuzz test)."""

from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile

from cim.accounts.models import Team
from cim.accounts.services import api_token_create
from cim.activities.follow_ups import callback_plan_create, follow_up_create
from cim.activities.history_schemas import InteractionInput, OrderInput, ProductInput
from cim.activities.interactions import interaction_log
from cim.activities.models import Notification
from cim.activities.orders import order_create, product_save
from cim.analytics.acquisition import acquisition_cost_set
from cim.analytics.schedules import report_schedule_create
from cim.automation.care import care_plan_create
from cim.automation.models import Message, MessageTemplate
from cim.automation.rules_services import rule_create
from cim.backups.models import Backup
from cim.customers import configuration
from cim.customers.models import Customer, Tag
from cim.customers.saved_views import saved_view_save
from cim.customers.services import customer_archive
from cim.customers.sharing import share_create
from cim.customers.tests.factories import make_customer
from cim.ingest.models import ImportJob
from cim.ingest.services import import_job_upload
from cim.quality.merge import customer_merge
from cim.quality.models import DuplicateCandidate
from cim.segments.services import segment_create
from cim.service.services import ticket_create


def world_create(admin_user) -> Tag:
    """What every operation may name: a tag, the custom field `level` and a team to share with."""
    tag = configuration.tag_create(name="VIP", actor=admin_user)
    configuration.custom_field_create(
        key="level", label_zh="等级", label_en="Tier", field_type="choice", choices=["金"], actor=admin_user
    )
    Team.objects.create(name="矩阵共享部")
    return tag


@dataclass
class PathWorld:
    customer: Customer
    other: Customer
    values: dict  # path parameter → value, and `saved_view_id` for bodies


def path_world(*, admin_user, user, path: str, tag: Tag) -> PathWorld:
    """The objects `path` names, as `user`'s own (inside every role's record scope)."""
    # The user's own customer, in their team: inside every role's record scope.
    customer = make_customer(admin_user, display_name="矩阵客户", owner_id=user.pk, team_id=user.team_id)
    ids = _history(customer, admin_user)
    ids.update(_service(customer, admin_user))
    ids.update(_follow_ups(customer, admin_user, user))
    ids.update(
        care_plan_id=care_plan_create(name="矩阵电话", occasion="birthday", action="call_task", actor=admin_user).pk
    )
    ids.update(segment_id=segment_create(actor=admin_user, name="矩阵名单", kind="static").pk)
    rule = rule_create(
        actor=admin_user, name="矩阵规则", trigger={"event": "customer.created"}, steps=[{"action": "wait", "days": 1}]
    )
    ids.update(automation_rule_id=rule.pk)
    ids.update(campaign_id=_campaign(admin_user, path))
    ids.update(_messages(customer))
    share = share_create(actor=admin_user, team=user.team, customer=customer, reason="矩阵")
    ids.update(share_id=share.pk)
    acquisition_cost_set(channel="website", month="2026-01", amount="100", actor=admin_user)
    ids.update(channel="website", month="2026-01")
    schedule = {"name": "矩阵日报", "report": "rfm", "frequency": "daily", "recipients": ["boss@example.com"]}
    ids.update(schedule_id=report_schedule_create(data=schedule, actor=admin_user).pk)
    ids.update(_privacy(customer, admin_user, path))
    ids.update(token_id=api_token_create(user=user, name="矩阵")[0].pk)
    backup = Backup.objects.create(file_name="cim-matrix.cimbak", engine="sqlite", created_at=customer.created_at)
    ids.update(backup_id=backup.pk)
    ids.update(_webhooks(admin_user))
    ids.update(import_id=_import(admin_user, user))
    if path.endswith("/restore"):
        customer_archive(customer=customer, actor=admin_user)
    # A second customer of theirs, a pair of the two, and a merge of them, for the data-quality operations.
    other = make_customer(admin_user, display_name="矩阵客户乙", owner_id=user.pk, team_id=user.team_id)
    pair = DuplicateCandidate.objects.create(customer=other, other=customer, reason="model", detected_by="test")
    merge_id = customer_merge(survivor=customer, duplicates=[other], actor=admin_user).pk if "merge_id" in path else 0
    values = {**ids, "number": customer.number, "tag_id": tag.pk, "key": "level", "pair_id": pair.pk}
    return PathWorld(customer, other, {**values, "merge_id": merge_id})


def _history(customer, admin_user) -> dict:
    """An order, a product, and an interaction with an attachment of the customer, for the history operations."""
    product_save(data=ProductInput(sku="TEA-1", name="龙井", price="10"), actor=admin_user)
    order = order_create(customer=customer, data=OrderInput(lines=[{"sku": "TEA-1"}]), actor=admin_user)
    note = SimpleUploadedFile("note.txt", b"notes")
    interaction = interaction_log(customer=customer, data=InteractionInput(kind="note"), actor=admin_user, files=[note])
    return {
        "order_id": order.pk,
        "sku": "TEA-1",
        "interaction_id": interaction.pk,
        "attachment_id": interaction.attachments.get().pk,
    }


def _service(customer, admin_user) -> dict:
    """A ticket of the customer, and an email address to send a survey to, for the service operations."""
    customer.emails.create(address="matrix@example.com", is_primary=True)
    ticket = ticket_create(customer=customer, subject="矩阵工单", channel="phone", actor=admin_user)
    return {"ticket_number": ticket.number, "priority": "normal"}


def _follow_ups(customer, admin_user, user) -> dict:
    """A follow-up of the customer, a notification of the user, and a call-back plan, for the follow-up operations."""
    follow_up = follow_up_create(
        customer=customer, title="矩阵回访", due_at=customer.created_at, owner=admin_user, actor=admin_user
    )
    view = saved_view_save(user=admin_user, name="矩阵VIP", query="value_tier=vip", is_shared=True)
    plan = callback_plan_create(name="矩阵计划", saved_view=view, every_days=30, title="回访", actor=admin_user)
    notification = Notification.objects.create(user=user, title="矩阵通知")
    return {
        "follow_up_id": follow_up.pk,
        "notification_id": notification.pk,
        "plan_id": plan.pk,
        "saved_view_id": view.pk,
    }


def _privacy(customer, admin_user, path: str) -> dict:
    """A verified access request of the customer, a retention rule and one entry of the register in `path`."""
    from cim.privacy.models import BreachIncident, CrossBorderTransfer, ImpactAssessment
    from cim.privacy.registers import register_save
    from cim.privacy.requests import request_create, request_verify
    from cim.privacy.retention import retention_rule_save

    request = request_create(customer=customer, kind="access", actor=admin_user)
    request_verify(request=request, method="id_document", actor=admin_user)
    rule = retention_rule_save(data={"name": "矩阵", "action": "scrub_events", "days": 3650}, actor=admin_user)
    entries = {
        "breaches": (BreachIncident, {"title": "t", "detected_at": customer.created_at, "nature": "n"}),
        "transfers": (CrossBorderTransfer, {"recipient": "r", "country": "DE", "purpose": "p", "legal_basis": "scc"}),
        "assessments": (ImpactAssessment, {"subject": "s", "assessed_on": customer.created_at.date(), "risks": "r"}),
    }
    entry_id = 0
    for name, (model, values) in entries.items():
        if f"/{name}/" in path:
            defaults = {"data_categories": "c", "measures": "m", "conclusion": "acceptable"}
            fields = {f.name for f in model._meta.get_fields()}
            data = {**{k: v for k, v in defaults.items() if k in fields}, **values}
            entry_id = register_save(instance=model(), data=data, actor=admin_user).pk
    return {"request_id": request.pk, "rule_id": rule.pk, "entry_id": entry_id}


def _campaign(admin_user, path: str) -> int:
    """A draft campaign to a list of its own (the matrix's list may be deleted); a sending one for the operations
    that need it running."""
    from cim.automation.campaigns import campaign_create, campaign_start

    audience = segment_create(actor=admin_user, name="矩阵活动名单", kind="static")
    variant = {"subject": "{{ customer.display_name }}", "body": "你好"}
    campaign = campaign_create(actor=admin_user, name="矩阵活动", segment=audience.pk, variants=[variant])
    if path.endswith(("/pause", "/cancel")):
        campaign_start(campaign=campaign, actor=admin_user)
    return campaign.pk


def _webhooks(admin_user) -> dict:
    """An endpoint (on a closed loopback port: a test send fails fast) and one delivery of it."""
    from cim.automation.webhooks import webhook_endpoint_create, webhook_send

    data = {"url": "http://127.0.0.1:9/hooks", "all_events": True, "scope_role": "administrator"}
    endpoint, _secret = webhook_endpoint_create(data=data, actor=admin_user)
    delivery = webhook_send(endpoint=endpoint, event_type="matrix.test", payload={}, key="matrix")
    return {"endpoint_id": endpoint.pk, "delivery_id": delivery.pk}


def _import(admin_user, user) -> int:
    """An uploaded customer import of the user's, not started."""
    upload = SimpleUploadedFile("矩阵.csv", "姓名,手机\n矩阵导入,13812345678\n".encode())
    job = import_job_upload(upload=upload, actor=admin_user)
    ImportJob.objects.filter(pk=job.pk).update(created_by=user)
    return job.pk


def _messages(customer) -> dict:
    template = MessageTemplate.objects.create(name="矩阵", channel="sms", purpose="marketing", body="您好")
    message = Message.objects.create(customer=customer, channel="sms", purpose="marketing", key=f"m:{customer.pk}")
    return {"template_id": template.pk, "message_id": message.pk}
