from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "cim.automation"
    label = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        from cim.automation import tasks, tasks_messages  # noqa: F401  (registers the periodic jobs)
        from cim.automation import bounces, tasks_campaigns  # noqa: F401  (anymail receivers, campaign jobs)
