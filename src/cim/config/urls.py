from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from cim.config.api import api
from cim.core.health import health, ready
from cim.core.metrics import metrics_view

# The admin site logs in through CIM's login (lockout, MFA), never through a password-only form of its own.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("health", health, name="health"),
    path("ready", ready, name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("cim.accounts.urls")),
    path("", include("cim.audit.urls")),
    # Before the customer pages, whose `customers/<number>/` would otherwise take `customers/export/`.
    path("", include("cim.ingest.urls")),
    path("", include("cim.quality.urls")),
    path("", include("cim.activities.urls")),
    path("", include("cim.service.urls")),
    path("", include("cim.analytics.urls")),
    path("", include("cim.segments.urls")),
    path("", include("cim.automation.urls")),
    path("anymail/", include("anymail.urls")),  # ESP tracking and inbound webhooks (docs/campaigns.md)
    path("", include("cim.privacy.urls")),
    path("", include("cim.backups.urls")),
    path("", include("cim.customers.urls")),
]
