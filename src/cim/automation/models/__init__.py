from cim.automation.models.care import CarePlan, CareRun, CareTask, Gift
from cim.automation.models.events import Event
from cim.automation.models.messages import Message, MessageTemplate, SuppressedAddress

__all__ = ["CarePlan", "CareRun", "CareTask", "Event", "Gift", "Message", "MessageTemplate", "SuppressedAddress"]
