from django.urls import path

from cim.segments import views

app_name = "segments"

urlpatterns = [
    path("segments/", views.segment_list_view, name="list"),
    path("segments/new/", views.segment_create_view, name="create"),
    path("segments/add-members/", views.segment_add_members_view, name="add_members"),
    path("segments/preview/", views.segment_preview_view, name="preview"),
    path("segments/<int:pk>/", views.segment_detail_view, name="detail"),
    path("segments/<int:pk>/edit/", views.segment_edit_view, name="edit"),
    path("segments/<int:pk>/refresh/", views.segment_refresh_view, name="refresh"),
    path("segments/<int:pk>/delete/", views.segment_delete_view, name="delete"),
]
