from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "cim.automation"
    label = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        # Register the periodic jobs, the events consumers (rules; webhooks through their sender), the anymail
        # receivers (bounces) and the timeline sources.
        from cim.automation import (  # noqa: F401
            bounces,
            message_timeline,
            rules,
            rules_timeline,
            tasks,
            tasks_campaigns,
            tasks_care,
            tasks_messages,
            tasks_rules,
            tasks_webhooks,
        )
