from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActivitiesConfig(AppConfig):
    name = "cim.activities"
    label = "activities"
    verbose_name = _("Activities")

    def ready(self):
        from cim.activities import follow_up_timeline, timeline_sources  # noqa: F401  register timeline sources
