from django.urls import path

from cim.quality import views

app_name = "quality"

urlpatterns = [
    path("quality/", views.quality_view, name="overview"),
    path("quality/review/", views.review_view, name="review"),
    path("customers/<str:number>/review/", views.customer_review_view, name="customer_review"),
    path("settings/required-fields/", views.required_fields_view, name="required_fields"),
    path("duplicates/", views.duplicates_view, name="duplicates"),
    path("duplicates/<int:pk>/distinct/", views.duplicate_decide_view, name="distinct"),
    path("merge/", views.merge_view, name="merge"),
    path("merges/<int:pk>/unmerge/", views.unmerge_view, name="unmerge"),
]
