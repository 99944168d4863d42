from django.urls import path

from cim.automation import views_campaigns as views

urlpatterns = [
    path("campaigns/", views.campaign_list_view, name="campaign_list"),
    path("campaigns/new/", views.campaign_create_view, name="campaign_create"),
    path("campaigns/preview/", views.campaign_preview_view, name="campaign_preview"),
    path("campaigns/<int:pk>/", views.campaign_detail_view, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", views.campaign_edit_view, name="campaign_edit"),
    path("campaigns/<int:pk>/<str:action>/", views.campaign_action_view, name="campaign_action"),
]
