from django.urls import path

from cim.quality import views

app_name = "quality"

urlpatterns = [
    path("duplicates/", views.duplicates_view, name="duplicates"),
    path("duplicates/<int:pk>/distinct/", views.duplicate_decide_view, name="distinct"),
    path("merge/", views.merge_view, name="merge"),
    path("merges/<int:pk>/unmerge/", views.unmerge_view, name="unmerge"),
]
