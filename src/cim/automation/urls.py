from django.urls import include, path

app_name = "automation"

urlpatterns = [
    path("", include("cim.automation.urls_webhooks")),
]
