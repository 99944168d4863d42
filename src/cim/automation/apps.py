from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "cim.automation"
    label = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        # The periodic jobs register themselves; `bounces` connects the anymail receivers, `message_timeline` the
        # messages on the customer timeline.
        from cim.automation import bounces, message_timeline, tasks, tasks_campaigns, tasks_messages  # noqa: F401
