from cim.automation.models.events import Event
from cim.automation.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = ["Event", "WebhookDelivery", "WebhookEndpoint"]
