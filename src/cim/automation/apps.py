from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "cim.automation"
    label = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        from cim.automation import (  # noqa: F401  (anymail receivers, periodic jobs)
            bounces,
            tasks,
            tasks_campaigns,
        )
