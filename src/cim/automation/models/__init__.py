from cim.automation.models.events import Event

__all__ = ["Event"]
