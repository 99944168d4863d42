from django.contrib import admin
from django.urls import include, path

from cim.config.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("cim.accounts.urls")),
    # Before the customer pages, whose `customers/<number>/` would otherwise take `customers/export/`.
    path("", include("cim.ingest.urls")),
    path("", include("cim.quality.urls")),
    path("", include("cim.activities.urls")),
    path("", include("cim.service.urls")),
    path("", include("cim.analytics.urls")),
    path("", include("cim.segments.urls")),
    path("", include("cim.backups.urls")),
    path("", include("cim.customers.urls")),
]
