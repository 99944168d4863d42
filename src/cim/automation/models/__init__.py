from cim.automation.models.events import Event
from cim.automation.models.rules import Rule, RuleRun, RuleStep

__all__ = ["Event", "Rule", "RuleRun", "RuleStep"]
