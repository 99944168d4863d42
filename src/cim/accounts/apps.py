from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "cim.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from cim.accounts import checks, signals  # noqa: F401 (registers the receivers and the deploy checks)
