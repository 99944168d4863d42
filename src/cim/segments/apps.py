from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "cim.segments"
    label = "segments"
    verbose_name = _("Segments")

    def ready(self) -> None:
        from cim.segments import tasks  # noqa: F401  (registers the periodic refresh)
