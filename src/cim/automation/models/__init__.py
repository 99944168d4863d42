from cim.automation.models.events import Event
from cim.automation.models.messages import Message, MessageTemplate, SuppressedAddress
from cim.automation.models.rules import Rule, RuleRun, RuleStep
from cim.automation.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Event",
    "Message",
    "MessageTemplate",
    "Rule",
    "RuleRun",
    "RuleStep",
    "SuppressedAddress",
    "WebhookDelivery",
    "WebhookEndpoint",
]
