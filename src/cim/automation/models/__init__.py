from cim.automation.models.campaigns import Campaign, CampaignConversion, CampaignVariant
from cim.automation.models.events import Event
from cim.automation.models.messages import Message, MessageTemplate, SuppressedAddress

__all__ = [
    "Campaign",
    "CampaignConversion",
    "CampaignVariant",
    "Event",
    "Message",
    "MessageTemplate",
    "SuppressedAddress",
]
