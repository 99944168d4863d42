from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "cim.customers"
    label = "customers"
    verbose_name = _("Customers")

    def ready(self):
        from cim.customers import history  # noqa: F401  registers the change history on the timeline
