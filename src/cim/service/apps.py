from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "cim.service"
    label = "service"
    verbose_name = _("Customer service")

    def ready(self) -> None:
        from cim.service import timeline  # noqa: F401  (registers the ticket and survey timeline sources)
