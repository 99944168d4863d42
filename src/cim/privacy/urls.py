from django.urls import path

from cim.privacy import views

app_name = "privacy"

urlpatterns = [
    path("customers/<str:number>/consents/", views.consent_record_view, name="consent_record"),
    path("customers/<str:number>/erase/", views.erase_view, name="erase"),
    path("customers/<str:number>/unrestrict/", views.unrestrict_view, name="unrestrict"),
    path("privacy/", views.request_list_view, name="requests"),
    path("privacy/requests/new/", views.request_create_view, name="request_create"),
    path("privacy/requests/<int:pk>/", views.request_detail_view, name="request"),
    path("privacy/requests/<int:pk>/package.<str:fmt>", views.request_package_view, name="request_package"),
    path("privacy/retention/", views.retention_view, name="retention"),
    path("privacy/retention/<int:pk>/dry-run/", views.retention_dry_run_view, name="retention_dry_run"),
    path("privacy/retention/<int:pk>/apply/", views.retention_apply_view, name="retention_apply"),
    path("privacy/<str:register>/", views.register_list_view, name="register"),
    path("privacy/<str:register>/new/", views.register_edit_view, name="register_create"),
    path("privacy/<str:register>/<int:pk>/", views.register_edit_view, name="register_edit"),
]
