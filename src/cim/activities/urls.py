from django.urls import include, path

from cim.activities import views

app_name = "activities"

urlpatterns = [
    path("activities/customers/<str:number>/timeline/", views.timeline_view, name="timeline"),
    path(
        "activities/customers/<str:number>/interactions/new/", views.interaction_create_view, name="interaction_create"
    ),
    path("activities/customers/<str:number>/orders/new/", views.order_create_view, name="order_create"),
    path("activities/interactions/<int:pk>/", views.interaction_detail_view, name="interaction"),
    path("activities/attachments/<int:pk>/", views.attachment_view, name="attachment"),
    path("activities/orders/", views.order_list_view, name="orders"),
    path("activities/orders/<int:pk>/", views.order_detail_view, name="order"),
    path("activities/orders/<int:pk>/refund/", views.order_action_view, {"action": "refund"}, name="order_refund"),
    path("activities/orders/<int:pk>/cancel/", views.order_action_view, {"action": "cancel"}, name="order_cancel"),
    path("activities/orders/<int:pk>/pay/", views.order_action_view, {"action": "pay"}, name="order_pay"),
    path("activities/products/", views.product_list_view, name="products"),
    path("activities/products/new/", views.product_edit_view, name="product_create"),
    path("activities/products/<str:sku>/", views.product_edit_view, name="product_edit"),
    path("activities/performance/", views.performance_view, name="performance"),
    path("activities/", include("cim.activities.follow_up_urls")),
]
