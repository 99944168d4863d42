from django.urls import path

from cim.ingest import tracking, views, views_forms, views_import

app_name = "ingest"

urlpatterns = [
    path("customers/export/", views.customers_export_view, name="customers_export"),
    path("imports/", views_import.import_list_view, name="import_list"),
    path("imports/<int:pk>/", views_import.import_detail_view, name="import_detail"),
    path("imports/<int:pk>/mapping/", views_import.import_mapping_view, name="import_mapping"),
    path("imports/<int:pk>/start/", views_import.import_start_view, name="import_start"),
    path("imports/<int:pk>/errors.csv", views_import.import_errors_view, name="import_errors"),
]

# The Segment / RudderStack tracking API: public, authenticated by a source's write key.
urlpatterns += [
    path(f"ingest/v1/{name}", tracking.tracking_view, {"message_type": kind}, name=f"tracking_{name}")
    for name, kind in tracking.ENDPOINTS.items()
]
urlpatterns.append(path("ingest/v1/<path:rest>", tracking.tracking_not_found_view))

# Collection forms: the builder in Settings, and the public pages (no login) with their embeddable address.
urlpatterns += [
    path("settings/forms/", views_forms.form_list_view, name="form_list"),
    path("settings/forms/new/", views_forms.form_create_view, name="form_create"),
    path("settings/forms/<int:pk>/", views_forms.form_edit_view, name="form_edit"),
    path("settings/forms/<int:pk>/submissions/", views_forms.form_submissions_view, name="form_submissions"),
    path("f/<slug:slug>/", views_forms.public_form_view, name="public_form"),
    path("f/<slug:slug>/s/<str:token>/", views_forms.public_step_view, name="form_step"),
    path("f/<slug:slug>/verify/<str:token>/", views_forms.public_email_link_view, name="form_email_link"),
]
