from cim.automation.models.campaigns import Campaign, CampaignConversion, CampaignVariant
from cim.automation.models.care import CarePlan, CareRun, CareTask, Gift
from cim.automation.models.events import Event
from cim.automation.models.messages import Message, MessageTemplate, SuppressedAddress
from cim.automation.models.rules import Rule, RuleRun, RuleStep
from cim.automation.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Campaign",
    "CampaignConversion",
    "CampaignVariant",
    "CarePlan",
    "CareRun",
    "CareTask",
    "Event",
    "Gift",
    "Message",
    "MessageTemplate",
    "Rule",
    "RuleRun",
    "RuleStep",
    "SuppressedAddress",
    "WebhookDelivery",
    "WebhookEndpoint",
]
