from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    name = "cim.privacy"
    label = "privacy"
    verbose_name = _("Privacy")

    def ready(self):
        from cim.privacy import erasure  # noqa: F401  (connects the tombstone replay to database_restored)
