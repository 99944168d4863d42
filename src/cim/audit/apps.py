from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "cim.audit"
    label = "audit"
    verbose_name = _("Audit")

    def ready(self):
        from cim.audit import checks, signals  # noqa: F401  (registers the receivers and the deploy check)
