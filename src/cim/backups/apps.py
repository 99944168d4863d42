from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackupsConfig(AppConfig):
    name = "cim.backups"
    label = "backups"
    verbose_name = _("Backups")

    def ready(self) -> None:
        from cim.backups import checks, tasks  # noqa: F401  (registers the `cim` checks and the daily backup)
