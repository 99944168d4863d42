from cim.automation.models.events import Event
from cim.automation.models.messages import Message, MessageTemplate, SuppressedAddress

__all__ = ["Event", "Message", "MessageTemplate", "SuppressedAddress"]
