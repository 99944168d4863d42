from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "cim.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.db.backends.signals import connection_created
        from django.db.models.signals import pre_migrate

        from cim.core import checks  # noqa: F401  (registers the deploy checks)
        from cim.core.migration_ops import lock_timeout_set
        from cim.core.postgres import utc_datetimes

        pre_migrate.connect(lock_timeout_set, sender=self)
        connection_created.connect(utc_datetimes)
