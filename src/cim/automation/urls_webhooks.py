from django.urls import path

from cim.automation import views_webhooks as views

urlpatterns = [
    path("automation/webhooks/", views.webhook_list_view, name="webhook_list"),
    path("automation/webhooks/new/", views.webhook_create_view, name="webhook_create"),
    path("automation/webhooks/deliveries/", views.delivery_list_view, name="webhook_deliveries"),
    path("automation/webhooks/deliveries/replay/", views.deliveries_replay_view, name="webhook_deliveries_replay"),
    path("automation/webhooks/deliveries/<int:pk>/", views.delivery_detail_view, name="webhook_delivery"),
    path("automation/webhooks/deliveries/<int:pk>/replay/", views.delivery_replay_view, name="webhook_delivery_replay"),
    path("automation/webhooks/<int:pk>/", views.webhook_detail_view, name="webhook_detail"),
    path("automation/webhooks/<int:pk>/edit/", views.webhook_edit_view, name="webhook_edit"),
    path("automation/webhooks/<int:pk>/test/", views.webhook_test_view, name="webhook_test"),
    path("automation/webhooks/<int:pk>/rotate-secret/", views.webhook_rotate_view, name="webhook_rotate"),
    path("automation/webhooks/<int:pk>/toggle/", views.webhook_toggle_view, name="webhook_toggle"),
    path("automation/webhooks/<int:pk>/delete/", views.webhook_delete_view, name="webhook_delete"),
    path("automation/events/", views.event_catalogue_view, name="event_catalogue"),
]
