from django.urls import path

from cim.analytics import views

app_name = "analytics"

urlpatterns = [
    path("analytics/", views.analytics_view, name="overview"),
]
