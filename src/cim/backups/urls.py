from django.urls import path

from cim.backups import views

app_name = "backups"

urlpatterns = [
    path("backups/", views.backup_list_view, name="list"),
    path("backups/create/", views.backup_create_view, name="create"),
    path("backups/<int:pk>/verify/", views.backup_verify_view, name="verify"),
]
