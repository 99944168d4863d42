"""Who may call what: every API operation × every role. A new endpoint without a row here fails the suite."""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLResolver, get_resolver

from cim.accounts.roles import Role
from cim.config.api import api
from cim.core.tests.api_world import path_world, world_create
from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer
from cim.ingest.sources import event_source_create

ALL = frozenset(Role)
EDITORS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE})
ARCHIVERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES})
TAGGERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE, Role.MARKETING})
ADMINS = frozenset({Role.ADMINISTRATOR})
EXPORTERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST})
MERGERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER})
TICKET_HANDLERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SERVICE})
SURVEY_SENDERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SERVICE, Role.MARKETING})
SURVEY_READERS = SURVEY_SENDERS | {Role.ANALYST}
ORDER_MANAGERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES})
LOGGERS = EDITORS
REVEALERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE})  # customer.reveal
SEGMENTERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST})
ANALYSTS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST})
COST_KEEPERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST})  # analytics.manage
PRIVACY = frozenset({Role.ADMINISTRATOR})  # privacy.manage
AUDITORS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.AUDITOR})  # audit.view
AUTOMATORS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING})  # automation.manage
CARERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING})  # care.manage
CAMPAIGNERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING})  # campaign.manage
SENDERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING})  # message.send
SHARERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE, Role.MARKETING})  # customer.share
IMPORTERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING})  # customer.import

# (method, OpenAPI path) → the roles allowed to call it.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/customers"): ALL,
    ("GET", "/api/v1/customers/export"): EXPORTERS,
    ("POST", "/api/v1/imports"): IMPORTERS,
    ("GET", "/api/v1/imports"): IMPORTERS,
    ("GET", "/api/v1/imports/fields"): IMPORTERS,
    ("GET", "/api/v1/imports/{import_id}"): IMPORTERS,
    ("PUT", "/api/v1/imports/{import_id}/mapping"): IMPORTERS,
    ("POST", "/api/v1/imports/{import_id}/run"): IMPORTERS,
    ("GET", "/api/v1/imports/{import_id}/errors"): IMPORTERS,
    ("POST", "/api/v1/customers"): EDITORS,
    ("GET", "/api/v1/customers/{number}"): ALL,
    ("PATCH", "/api/v1/customers/{number}"): EDITORS,
    ("POST", "/api/v1/customers/{number}/archive"): ARCHIVERS,
    ("POST", "/api/v1/customers/{number}/restore"): ARCHIVERS,
    ("POST", "/api/v1/customers/{number}/reveal"): REVEALERS,
    ("POST", "/api/v1/customers/bulk-tag"): TAGGERS,
    ("GET", "/api/v1/tags"): ALL,
    ("POST", "/api/v1/tags"): ADMINS,
    ("PATCH", "/api/v1/tags/{tag_id}"): ADMINS,
    ("GET", "/api/v1/custom-fields"): ALL,
    ("POST", "/api/v1/custom-fields"): ADMINS,
    ("PATCH", "/api/v1/custom-fields/{key}"): ADMINS,
    ("GET", "/api/v1/customers/{number}/duplicates"): ALL,
    ("GET", "/api/v1/duplicates"): ALL,
    ("POST", "/api/v1/duplicates/{pair_id}"): EDITORS,
    ("POST", "/api/v1/duplicates/scan"): ADMINS,
    ("POST", "/api/v1/merges"): MERGERS,
    ("POST", "/api/v1/merges/{merge_id}/unmerge"): MERGERS,
    ("GET", "/api/v1/tickets"): ALL,
    ("POST", "/api/v1/tickets"): TICKET_HANDLERS,
    ("GET", "/api/v1/tickets/sla"): ALL,
    ("GET", "/api/v1/tickets/{ticket_number}"): ALL,
    ("POST", "/api/v1/tickets/{ticket_number}/replies"): TICKET_HANDLERS,
    ("POST", "/api/v1/tickets/{ticket_number}/notes"): TICKET_HANDLERS,
    ("POST", "/api/v1/tickets/{ticket_number}/transition"): TICKET_HANDLERS,
    ("POST", "/api/v1/tickets/{ticket_number}/assign"): TICKET_HANDLERS,
    ("POST", "/api/v1/tickets/{ticket_number}/escalate"): TICKET_HANDLERS,
    ("GET", "/api/v1/sla-policies"): ALL,
    ("PATCH", "/api/v1/sla-policies/{priority}"): ADMINS,
    ("POST", "/api/v1/surveys"): SURVEY_SENDERS,
    ("GET", "/api/v1/surveys"): SURVEY_READERS,
    ("GET", "/api/v1/surveys/report"): SURVEY_READERS,
    ("GET", "/api/v1/customers/{number}/timeline"): ALL,
    ("GET", "/api/v1/customers/{number}/activity"): ALL,
    ("GET", "/api/v1/orders"): ALL,
    ("GET", "/api/v1/customers/{number}/orders"): ALL,
    ("POST", "/api/v1/customers/{number}/orders"): ORDER_MANAGERS,
    ("GET", "/api/v1/orders/{order_id}"): ALL,
    ("POST", "/api/v1/orders/{order_id}/refund"): ORDER_MANAGERS,
    ("POST", "/api/v1/orders/{order_id}/cancel"): ORDER_MANAGERS,
    ("POST", "/api/v1/orders/{order_id}/pay"): ORDER_MANAGERS,
    ("GET", "/api/v1/products"): ALL,
    ("GET", "/api/v1/products/{sku}"): ALL,
    ("PUT", "/api/v1/products/{sku}"): ORDER_MANAGERS,
    ("GET", "/api/v1/customers/{number}/interactions"): ALL,
    ("POST", "/api/v1/customers/{number}/interactions"): LOGGERS,
    ("GET", "/api/v1/interactions/{interaction_id}"): ALL,
    ("POST", "/api/v1/interactions/{interaction_id}/attachments"): LOGGERS,
    ("GET", "/api/v1/attachments/{attachment_id}"): ALL,
    ("GET", "/api/v1/performance"): frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.ANALYST}),
    ("GET", "/api/v1/analytics/rfm"): ANALYSTS,
    ("GET", "/api/v1/analytics/clv"): ANALYSTS,
    ("GET", "/api/v1/analytics/lifecycle"): ANALYSTS,
    ("GET", "/api/v1/analytics/churn"): ALL,
    ("GET", "/api/v1/analytics/clusters"): ANALYSTS,
    ("GET", "/api/v1/analytics/rules"): ANALYSTS,
    ("GET", "/api/v1/analytics/sentiment"): ANALYSTS,
    ("GET", "/api/v1/customers/{number}/recommendations"): ALL,
    ("GET", "/api/v1/analytics/acquisition"): ANALYSTS,
    ("GET", "/api/v1/analytics/acquisition-costs"): ANALYSTS,
    ("GET", "/api/v1/analytics/acquisition-costs/{channel}/{month}"): ANALYSTS,
    ("PUT", "/api/v1/analytics/acquisition-costs/{channel}/{month}"): COST_KEEPERS,
    ("DELETE", "/api/v1/analytics/acquisition-costs/{channel}/{month}"): COST_KEEPERS,
    ("GET", "/api/v1/analytics/dashboard"): ANALYSTS,
    ("GET", "/api/v1/campaigns"): ANALYSTS,
    ("POST", "/api/v1/campaigns"): CAMPAIGNERS,
    ("GET", "/api/v1/campaigns/{campaign_id}"): ANALYSTS,
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): CAMPAIGNERS,
    ("DELETE", "/api/v1/campaigns/{campaign_id}"): CAMPAIGNERS,
    ("POST", "/api/v1/campaigns/{campaign_id}/schedule"): CAMPAIGNERS,
    ("POST", "/api/v1/campaigns/{campaign_id}/start"): CAMPAIGNERS,
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): CAMPAIGNERS,
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel"): CAMPAIGNERS,
    ("GET", "/api/v1/campaigns/{campaign_id}/report"): ANALYSTS,
    ("POST", "/api/v1/campaigns/{campaign_id}/preview"): CAMPAIGNERS,
    ("GET", "/api/v1/analytics/cohorts"): ANALYSTS,
    ("GET", "/api/v1/analytics/report-schedules"): COST_KEEPERS,
    ("POST", "/api/v1/analytics/report-schedules"): COST_KEEPERS,
    ("GET", "/api/v1/analytics/report-schedules/{schedule_id}"): COST_KEEPERS,
    ("PATCH", "/api/v1/analytics/report-schedules/{schedule_id}"): COST_KEEPERS,
    ("DELETE", "/api/v1/analytics/report-schedules/{schedule_id}"): COST_KEEPERS,
    ("GET", "/api/v1/follow-ups"): ALL,
    ("POST", "/api/v1/follow-ups"): LOGGERS,
    ("GET", "/api/v1/follow-ups/{follow_up_id}"): ALL,
    ("PATCH", "/api/v1/follow-ups/{follow_up_id}"): LOGGERS,
    ("POST", "/api/v1/follow-ups/{follow_up_id}/complete"): LOGGERS,
    ("POST", "/api/v1/follow-ups/{follow_up_id}/cancel"): LOGGERS,
    ("POST", "/api/v1/follow-ups/{follow_up_id}/reopen"): LOGGERS,
    ("GET", "/api/v1/customers/{number}/follow-ups"): ALL,
    ("GET", "/api/v1/notifications"): ALL,
    ("POST", "/api/v1/notifications/{notification_id}/read"): ALL,
    ("POST", "/api/v1/notifications/read-all"): ALL,
    ("GET", "/api/v1/care/calendar"): ALL,
    ("GET", "/api/v1/care/customers"): ALL,
    ("GET", "/api/v1/care/plans"): CARERS,
    ("POST", "/api/v1/care/plans"): CARERS,
    ("PATCH", "/api/v1/care/plans/{care_plan_id}"): CARERS,
    ("POST", "/api/v1/care/run"): CARERS,
    ("GET", "/api/v1/care/gifts"): ALL,
    ("GET", "/api/v1/customers/{number}/gifts"): ALL,
    ("POST", "/api/v1/customers/{number}/gifts"): LOGGERS,
    ("GET", "/api/v1/callback-plans"): ADMINS,
    ("POST", "/api/v1/callback-plans"): ADMINS,
    ("PATCH", "/api/v1/callback-plans/{plan_id}"): ADMINS,
    ("POST", "/api/v1/callback-plans/run"): ADMINS,
    ("GET", "/api/v1/segments"): ALL,
    ("GET", "/api/v1/message-templates"): SENDERS,
    ("POST", "/api/v1/message-templates"): SENDERS,
    ("GET", "/api/v1/message-templates/{template_id}"): SENDERS,
    ("PATCH", "/api/v1/message-templates/{template_id}"): SENDERS,
    ("POST", "/api/v1/message-templates/{template_id}/preview"): SENDERS,
    ("POST", "/api/v1/messages"): SENDERS,
    ("GET", "/api/v1/messages"): ALL,
    ("GET", "/api/v1/messages/{message_id}"): ALL,
    ("GET", "/api/v1/segments/fields"): ALL,
    ("POST", "/api/v1/segments/preview"): SEGMENTERS,
    ("POST", "/api/v1/segments"): SEGMENTERS,
    ("GET", "/api/v1/segments/{segment_id}"): ALL,
    ("PATCH", "/api/v1/segments/{segment_id}"): SEGMENTERS,
    ("DELETE", "/api/v1/segments/{segment_id}"): SEGMENTERS,
    ("POST", "/api/v1/segments/{segment_id}/refresh"): SEGMENTERS,
    ("POST", "/api/v1/segments/{segment_id}/members"): TAGGERS,
    ("POST", "/api/v1/segments/{segment_id}/members/remove"): TAGGERS,
    ("GET", "/api/v1/rules"): AUTOMATORS,
    ("POST", "/api/v1/rules"): AUTOMATORS,
    ("GET", "/api/v1/rules/{automation_rule_id}"): AUTOMATORS,
    ("PATCH", "/api/v1/rules/{automation_rule_id}"): AUTOMATORS,
    ("DELETE", "/api/v1/rules/{automation_rule_id}"): AUTOMATORS,
    ("POST", "/api/v1/rules/{automation_rule_id}/activate"): AUTOMATORS,
    ("POST", "/api/v1/rules/{automation_rule_id}/deactivate"): AUTOMATORS,
    ("POST", "/api/v1/rules/{automation_rule_id}/dry-run"): AUTOMATORS,
    ("GET", "/api/v1/rules/{automation_rule_id}/runs"): AUTOMATORS,
    # Everyone reads the shares they made and those their team receives; revoking is the sharer's or an
    # administrator's (the row's share is an administrator's, to the user's team).
    ("GET", "/api/v1/shares"): ALL,
    ("POST", "/api/v1/shares"): SHARERS,
    ("GET", "/api/v1/shares/{share_id}"): ALL,
    ("DELETE", "/api/v1/shares/{share_id}"): ADMINS,
    ("GET", "/api/v1/customers/{number}/consents"): ALL,
    ("POST", "/api/v1/customers/{number}/consents"): EDITORS,
    ("POST", "/api/v1/customers/{number}/erase"): PRIVACY,
    ("DELETE", "/api/v1/customers/{number}/restriction"): PRIVACY,
    ("GET", "/api/v1/privacy/requests"): PRIVACY,
    ("POST", "/api/v1/privacy/requests"): PRIVACY,
    ("GET", "/api/v1/privacy/requests/{request_id}"): PRIVACY,
    ("POST", "/api/v1/privacy/requests/{request_id}/transition"): PRIVACY,
    ("GET", "/api/v1/privacy/requests/{request_id}/package"): PRIVACY,
    ("GET", "/api/v1/privacy/retention-rules"): PRIVACY,
    ("POST", "/api/v1/privacy/retention-rules"): PRIVACY,
    ("PATCH", "/api/v1/privacy/retention-rules/{rule_id}"): PRIVACY,
    ("GET", "/api/v1/privacy/retention-rules/{rule_id}/dry-run"): PRIVACY,
    ("POST", "/api/v1/privacy/retention-rules/{rule_id}/apply"): PRIVACY,
    ("GET", "/api/v1/privacy/breaches"): PRIVACY,
    ("POST", "/api/v1/privacy/breaches"): PRIVACY,
    ("GET", "/api/v1/privacy/breaches/{entry_id}"): PRIVACY,
    ("PATCH", "/api/v1/privacy/breaches/{entry_id}"): PRIVACY,
    ("GET", "/api/v1/privacy/transfers"): PRIVACY,
    ("POST", "/api/v1/privacy/transfers"): PRIVACY,
    ("GET", "/api/v1/privacy/transfers/{entry_id}"): PRIVACY,
    ("PATCH", "/api/v1/privacy/transfers/{entry_id}"): PRIVACY,
    ("GET", "/api/v1/privacy/assessments"): PRIVACY,
    ("POST", "/api/v1/privacy/assessments"): PRIVACY,
    ("GET", "/api/v1/privacy/assessments/{entry_id}"): PRIVACY,
    ("PATCH", "/api/v1/privacy/assessments/{entry_id}"): PRIVACY,
    # Everyone manages their own API tokens.
    ("GET", "/api/v1/tokens"): ALL,
    ("POST", "/api/v1/tokens"): ALL,
    ("POST", "/api/v1/tokens/{token_id}/revoke"): ALL,
    ("GET", "/api/v1/audit/events"): AUDITORS,
    ("POST", "/api/v1/audit/verify"): AUDITORS,
    ("GET", "/api/v1/backups"): ADMINS,
    ("POST", "/api/v1/backups"): ADMINS,
    ("POST", "/api/v1/backups/{backup_id}/verify"): ADMINS,
    ("GET", "/api/v1/events/catalogue"): ALL,
    ("GET", "/api/v1/webhooks"): ADMINS,
    ("POST", "/api/v1/webhooks"): ADMINS,
    ("GET", "/api/v1/webhooks/{endpoint_id}"): ADMINS,
    ("PATCH", "/api/v1/webhooks/{endpoint_id}"): ADMINS,
    ("DELETE", "/api/v1/webhooks/{endpoint_id}"): ADMINS,
    ("POST", "/api/v1/webhooks/{endpoint_id}/rotate-secret"): ADMINS,
    ("POST", "/api/v1/webhooks/{endpoint_id}/test"): ADMINS,
    ("GET", "/api/v1/webhooks/deliveries"): ADMINS,
    ("GET", "/api/v1/webhooks/deliveries/{delivery_id}"): ADMINS,
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"): ADMINS,
    ("POST", "/api/v1/webhooks/deliveries/replay"): ADMINS,
}

# A valid body per operation, so that the role is the only thing that varies.
BODIES = {
    ("POST", "/api/v1/care/plans"): {"name": "矩阵关怀", "occasion": "qixi", "action": "call_task"},
    ("PATCH", "/api/v1/care/plans/{care_plan_id}"): {"lead_days": 1},
    ("POST", "/api/v1/care/run"): {},
    ("POST", "/api/v1/customers/{number}/gifts"): {"description": "月饼礼盒", "occasion": "mid_autumn_festival"},
    ("POST", "/api/v1/customers"): {"display_name": "新客户", "phones": [{"number": "13812345678"}]},
    ("PATCH", "/api/v1/customers/{number}"): {"alias": "老客户"},
    ("POST", "/api/v1/customers/{number}/archive"): {"reason": "重复"},
    ("POST", "/api/v1/customers/{number}/restore"): {},
    ("PUT", "/api/v1/imports/{import_id}/mapping"): {"mapping": {"姓名": "display_name", "手机": "phones"}},
    ("POST", "/api/v1/imports/{import_id}/run"): {"dry_run": True},
    ("POST", "/api/v1/customers/{number}/reveal"): {"fields": ["phone.number"]},
    ("POST", "/api/v1/customers/bulk-tag"): {"numbers": ["{number}"], "add": ["重点"]},
    ("POST", "/api/v1/tags"): {"name": "新标签", "color": "#112233"},
    ("PATCH", "/api/v1/tags/{tag_id}"): {"description": "改过"},
    ("POST", "/api/v1/custom-fields"): {
        "key": "budget",
        "label_zh": "预算",
        "label_en": "Budget",
        "field_type": "number",
    },
    ("PATCH", "/api/v1/custom-fields/{key}"): {"label_en": "Level"},
    ("POST", "/api/v1/duplicates/{pair_id}"): {"status": "distinct"},
    ("POST", "/api/v1/duplicates/scan"): {},
    ("POST", "/api/v1/merges"): {"survivor": "{number}", "duplicates": ["{other}"]},
    ("POST", "/api/v1/merges/{merge_id}/unmerge"): {},
    ("POST", "/api/v1/tickets"): {"customer": "{number}", "subject": "矩阵投诉", "channel": "phone"},
    ("POST", "/api/v1/tickets/{ticket_number}/replies"): {"body": "您好，已处理。"},
    ("POST", "/api/v1/tickets/{ticket_number}/notes"): {"body": "内部备注"},
    ("POST", "/api/v1/tickets/{ticket_number}/transition"): {"status": "in_progress"},
    ("POST", "/api/v1/tickets/{ticket_number}/assign"): {"assignee": None},
    ("POST", "/api/v1/tickets/{ticket_number}/escalate"): {"reason": "客户要求升级"},
    ("PATCH", "/api/v1/sla-policies/{priority}"): {"first_response_minutes": 200},
    ("POST", "/api/v1/surveys"): {"customer": "{number}", "kind": "csat", "channel": "email"},
    ("POST", "/api/v1/customers/{number}/orders"): {"lines": [{"name": "茶叶", "unit_price": "10"}]},
    ("POST", "/api/v1/orders/{order_id}/refund"): {"amount": "1"},
    ("POST", "/api/v1/orders/{order_id}/cancel"): {"reason": "缺货"},
    ("POST", "/api/v1/orders/{order_id}/pay"): {},
    ("PUT", "/api/v1/products/{sku}"): {"sku": "TEA-1", "name": "龙井"},
    ("POST", "/api/v1/customers/{number}/interactions"): {"kind": "call", "subject": "回访"},
    ("POST", "/api/v1/follow-ups"): {
        "customer": "{number}",
        "title": "矩阵回访",
        "due_at": "2030-01-01T10:00:00+08:00",
    },
    ("PATCH", "/api/v1/follow-ups/{follow_up_id}"): {"title": "改过"},
    ("POST", "/api/v1/follow-ups/{follow_up_id}/complete"): {},
    ("POST", "/api/v1/follow-ups/{follow_up_id}/cancel"): {},
    ("POST", "/api/v1/follow-ups/{follow_up_id}/reopen"): {},
    ("POST", "/api/v1/notifications/{notification_id}/read"): {},
    ("POST", "/api/v1/notifications/read-all"): {},
    ("POST", "/api/v1/callback-plans"): {
        "name": "矩阵新计划",
        "saved_view_id": "{saved_view_id}",
        "every_days": 30,
        "title": "回访",
    },
    ("PATCH", "/api/v1/callback-plans/{plan_id}"): {"every_days": 14},
    ("POST", "/api/v1/callback-plans/run"): {},
    ("PUT", "/api/v1/analytics/acquisition-costs/{channel}/{month}"): {"amount": "1200.00"},
    ("POST", "/api/v1/analytics/report-schedules"): {
        "name": "矩阵周报",
        "report": "dashboard",
        "frequency": "weekly",
        "recipients": ["boss@example.com"],
    },
    ("PATCH", "/api/v1/analytics/report-schedules/{schedule_id}"): {"frequency": "monthly"},
    ("POST", "/api/v1/segments/preview"): {"rules": {"rules": []}},
    ("POST", "/api/v1/message-templates"): {"name": "矩阵模板", "purpose": "marketing", "body": "您好"},
    ("PATCH", "/api/v1/message-templates/{template_id}"): {"subject": "改过"},
    ("POST", "/api/v1/message-templates/{template_id}/preview"): {"customer": "{number}"},
    ("POST", "/api/v1/messages"): {"template": "{template_id}", "customers": ["{number}"]},
    ("POST", "/api/v1/segments"): {
        "name": "矩阵分群",
        "rules": {"rules": [{"field": "gender", "operator": "eq", "value": "female"}]},
    },
    ("PATCH", "/api/v1/segments/{segment_id}"): {"description": "改过"},
    ("POST", "/api/v1/segments/{segment_id}/refresh"): {},
    ("POST", "/api/v1/segments/{segment_id}/members"): {"numbers": ["{number}"]},
    ("POST", "/api/v1/segments/{segment_id}/members/remove"): {"numbers": ["{number}"]},
    ("POST", "/api/v1/rules"): {
        "name": "矩阵新规则",
        "trigger": {"event": "customer.tag_added", "tag": "VIP"},
        "steps": [{"action": "add_tag", "tag": "贵宾"}],
    },
    ("PATCH", "/api/v1/rules/{automation_rule_id}"): {"description": "改过"},
    ("POST", "/api/v1/rules/{automation_rule_id}/activate"): {},
    ("POST", "/api/v1/rules/{automation_rule_id}/deactivate"): {},
    ("POST", "/api/v1/rules/{automation_rule_id}/dry-run"): {"segment_id": "{segment_id}"},
    ("POST", "/api/v1/shares"): {"customer": "{number}", "team": "矩阵共享部", "reason": "跨部门协作"},
    ("POST", "/api/v1/customers/{number}/consents"): {"purpose": "marketing", "text": "同意", "text_version": "v1"},
    ("POST", "/api/v1/customers/{number}/erase"): {"reason": "本人要求", "confirm": "{number}"},
    ("POST", "/api/v1/privacy/requests"): {"customer": "{number}", "kind": "access", "law": "gdpr"},
    ("POST", "/api/v1/privacy/requests/{request_id}/transition"): {"action": "start"},
    ("POST", "/api/v1/privacy/retention-rules"): {"name": "矩阵规则", "action": "scrub_events", "days": 365},
    ("PATCH", "/api/v1/privacy/retention-rules/{rule_id}"): {"days": 400},
    ("POST", "/api/v1/privacy/retention-rules/{rule_id}/apply"): {},
    ("POST", "/api/v1/privacy/breaches"): {
        "title": "矩阵事件",
        "detected_at": "2026-12-01T10:00:00+08:00",
        "nature": "误发邮件",
        "data_categories": "邮箱",
    },
    ("PATCH", "/api/v1/privacy/breaches/{entry_id}"): {"approx_subjects": 3},
    ("POST", "/api/v1/privacy/transfers"): {
        "recipient": "Acme GmbH",
        "country": "DE",
        "purpose": "客服",
        "legal_basis": "standard_contract",
        "data_categories": "姓名",
        "yearly_counts": {"2026": 10},
    },
    ("PATCH", "/api/v1/privacy/transfers/{entry_id}"): {"yearly_counts": {"2026": 12}},
    ("POST", "/api/v1/privacy/assessments"): {
        "subject": "会员营销",
        "assessed_on": "2026-11-30",
        "risks": "泄露",
        "measures": "加密",
        "conclusion": "with_measures",
    },
    ("PATCH", "/api/v1/privacy/assessments/{entry_id}"): {"conclusion": "acceptable"},
    ("POST", "/api/v1/tokens"): {"name": "矩阵令牌", "scope": "read", "days": 7},
    ("POST", "/api/v1/campaigns"): {
        "name": "矩阵活动二",
        "segment": "{segment_id}",
        "variants": [{"subject": "{{ customer.display_name }}", "body": "你好"}],
    },
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): {"cost": "12.5"},
    ("POST", "/api/v1/campaigns/{campaign_id}/schedule"): {"at": "2099-12-24T10:00:00+08:00"},
    ("POST", "/api/v1/campaigns/{campaign_id}/preview"): {"customer": "{number}"},
    ("POST", "/api/v1/backups"): {"verify": True},
    ("POST", "/api/v1/webhooks"): {
        "url": "https://example.com/hooks",
        "event_types": ["customer.created"],
        "scope_role": "administrator",
    },
    ("PATCH", "/api/v1/webhooks/{endpoint_id}"): {"description": "改过"},
    ("POST", "/api/v1/webhooks/deliveries/replay"): {},
}


def _operations() -> set[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_api_operation_has_a_row():
    operations = _operations()
    missing = operations - set(MATRIX)
    stale = set(MATRIX) - operations
    assert not missing, f"add these operations to MATRIX: {sorted(missing)}"
    assert not stale, f"these MATRIX rows match no operation: {sorted(stale)}"


def test_every_row_names_known_roles():
    for roles in MATRIX.values():
        assert roles <= ALL


@pytest.fixture
def world(users, admin_user):
    return {"tag": world_create(admin_user)}


def _call(client: Client, method: str, path: str, body):
    if method == "GET":
        return client.get(path)
    if path.endswith("/attachments"):
        return client.post(path, {"file": SimpleUploadedFile("a.txt", b"attached")})
    if path == "/api/v1/imports":
        return client.post(path, {"file": SimpleUploadedFile("客户.csv", "姓名,手机\n张三,13812345678\n".encode())})
    return getattr(client, method.lower())(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_role_matrix(api_client, users, admin_user, world, role, method, path):
    user = users[role]
    made = path_world(admin_user=admin_user, user=user, path=path, tag=world["tag"])
    customer, other, ids = made.customer, made.other, made.values
    url = path.format(**ids)
    body = json.loads(
        json.dumps(BODIES.get((method, path)))
        .replace("{number}", customer.number)
        .replace("{other}", other.number)
        .replace("{saved_view_id}", str(ids["saved_view_id"]))
        .replace('"{segment_id}"', str(ids["segment_id"]))
        .replace("{segment_id}", str(ids["segment_id"]))
        .replace('"{template_id}"', str(ids["template_id"]))
    )
    before = (Customer.objects.count(), customer.status)

    response = _call(api_client(user), method, url, body)

    if role in MATRIX[(method, path)]:
        assert 200 <= response.status_code < 300, (role, method, path, response.content[:300])
    else:
        assert response.status_code == 403, (role, method, path, response.content[:300])
        assert response.json()["code"] == "permission_denied"
        customer.refresh_from_db()
        assert (Customer.objects.count(), customer.status) == before
        assert customer.alias == ""
        assert not customer.tags.exists()


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_every_operation_needs_authentication(world, admin_user, method, path):
    customer = make_customer(admin_user)
    ids = {"order_id": 1, "sku": "x", "interaction_id": 1, "attachment_id": 1}
    ids.update(ticket_number="T-2026-000001", priority="normal")
    ids.update(
        follow_up_id=1, notification_id=1, plan_id=1, care_plan_id=1, channel="website", month="2026-01", segment_id=1
    )
    ids.update(schedule_id=1, request_id=1, rule_id=1, entry_id=1, token_id=1, backup_id=1, automation_rule_id=1)
    ids.update(campaign_id=1, template_id=1, message_id=1, share_id=1, endpoint_id=1, delivery_id=1, import_id=1)
    url = path.format(number=customer.number, tag_id=world["tag"].pk, key="level", pair_id=1, merge_id=1, **ids)
    response = _call(Client(), method, url, BODIES.get((method, path)))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- Public endpoints outside /api/v1/: the tracking API, authenticated by a source's write key, never by a user

# (method, path) → a valid body. Every role, and nobody logged in, gets the same answers.
PUBLIC: dict[tuple[str, str], dict] = {
    ("POST", "/ingest/v1/identify"): {"userId": "u-1", "traits": {"name": "矩阵客户"}},
    ("POST", "/ingest/v1/track"): {"userId": "u-1", "event": "Signed Up"},
    ("POST", "/ingest/v1/page"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/screen"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/group"): {"userId": "u-1", "groupId": "g-1"},
    ("POST", "/ingest/v1/alias"): {"userId": "u-1", "previousId": "a-1"},
    ("POST", "/ingest/v1/batch"): {"batch": [{"type": "track", "userId": "u-1", "event": "Signed Up"}]},
    # analytics.js's short paths: the first letter of the type.
    ("POST", "/ingest/v1/i"): {"userId": "u-1", "traits": {"name": "矩阵客户"}},
    ("POST", "/ingest/v1/t"): {"userId": "u-1", "event": "Signed Up"},
    ("POST", "/ingest/v1/p"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/s"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/g"): {"userId": "u-1", "groupId": "g-1"},
    ("POST", "/ingest/v1/a"): {"userId": "u-1", "previousId": "a-1"},
    ("POST", "/ingest/v1/b"): {"batch": [{"type": "track", "userId": "u-1", "event": "Signed Up"}]},
}


def _tracking_paths(resolver=None, prefix="/") -> set[str]:
    """Every fixed URL under /ingest/v1/ (the catch-all that answers a JSON 404 aside)."""
    paths = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths |= _tracking_paths(pattern, route)
        elif route.startswith("/ingest/v1/") and "<" not in route:
            paths.add(route)
    return paths


def test_every_tracking_endpoint_has_a_row():
    assert _tracking_paths() == {path for _, path in PUBLIC}


@pytest.mark.parametrize("role", [None, *Role])
@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_tracking_endpoints_take_a_write_key_not_a_user(users, api_client, role, method, path):
    _source, write_key = event_source_create(name="矩阵", actor=None)
    client = Client()
    if role is not None:
        client = api_client(users[role])
        client.force_login(users[role])
    body = json.dumps(PUBLIC[(method, path)])

    refused = client.post(path, data=body, content_type="application/json")
    basic = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    accepted = client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=basic)

    assert refused.status_code == 401 and refused.json()["code"] == "missing_write_key", refused.content[:300]
    assert accepted.status_code == 200, (role, path, accepted.content[:300])
