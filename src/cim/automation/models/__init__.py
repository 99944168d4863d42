from cim.automation.models.campaigns import Campaign, CampaignConversion, CampaignVariant
from cim.automation.models.events import Event

__all__ = ["Campaign", "CampaignConversion", "CampaignVariant", "Event"]
