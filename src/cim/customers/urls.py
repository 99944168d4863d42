from django.urls import path

from cim.customers import views, views_settings, views_sharing

app_name = "customers"

urlpatterns = [
    path("", views.customer_list_view, name="list"),
    path("customers/new/", views.customer_create_view, name="create"),
    # Before `customers/<number>/`, which would otherwise match these words.
    path("customers/bulk-tag/", views.customers_bulk_tag_view, name="bulk_tag"),
    path("customers/bulk-share/", views_sharing.customers_share_view, name="bulk_share"),
    path("customers/<str:number>/", views.customer_detail_view, name="detail"),
    path("shares/", views_sharing.share_list_view, name="shares"),
    path("shares/new/", views_sharing.share_create_view, name="share_create"),
    path("shares/<int:pk>/revoke/", views_sharing.share_revoke_view, name="share_revoke"),
    path("customers/<str:number>/edit/", views.customer_edit_view, name="edit"),
    path("customers/<str:number>/archive/", views.customer_archive_view, name="archive"),
    path("customers/<str:number>/restore/", views.customer_restore_view, name="restore"),
    path("customers/<str:number>/tags/", views.customer_tag_view, name="tag"),
    path("customers/<str:number>/reveal/", views.customer_reveal_view, name="reveal"),
    path("views/", views.saved_view_create_view, name="saved_view_create"),
    path("views/<int:pk>/delete/", views.saved_view_delete_view, name="saved_view_delete"),
    path("settings/", views_settings.settings_view, name="settings"),
    path("settings/tags/", views_settings.settings_tags_view, name="settings_tags"),
    path("settings/tags/<int:pk>/", views_settings.settings_tag_edit_view, name="settings_tag_edit"),
    path("settings/fields/", views_settings.settings_fields_view, name="settings_fields"),
    path("settings/fields/<int:pk>/", views_settings.settings_field_edit_view, name="settings_field_edit"),
    path("settings/fields/<int:pk>/active/", views_settings.settings_field_active_view, name="settings_field_active"),
    path("settings/numbering/", views_settings.settings_numbering_view, name="settings_numbering"),
    path(
        "settings/numbering/example/", views_settings.settings_numbering_example_view, name="settings_numbering_example"
    ),
]
