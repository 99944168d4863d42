from django.urls import path

from cim.automation import views_messages as views
from cim.automation import views_messages_public as public

urlpatterns = [
    path("messages/", views.message_list_view, name="message_list"),
    path("messages/templates/", views.template_list_view, name="message_templates"),
    path("messages/templates/new/", views.template_create_view, name="message_template_create"),
    path("messages/templates/<int:pk>/", views.template_edit_view, name="message_template"),
    path("messages/templates/<int:pk>/preview/", views.template_preview_view, name="message_template_preview"),
    path("messages/templates/<int:pk>/send/", views.template_send_view, name="message_template_send"),
    # Reached from messages, without a login: signed tokens only.
    path("m/o/<str:token>.gif", public.message_open_view, name="message_open"),
    path("m/c/<str:token>/", public.message_click_view, name="message_click"),
    path("m/u/<str:token>/", public.message_unsubscribe_view, name="message_unsubscribe"),
    # Delivery receipts from the SMS gateways (a key in the URL) and WeChat (a signature).
    path("m/r/wechat/", public.message_receipt_wechat_view, name="message_receipt_wechat"),
    path("m/r/<str:provider>/<str:key>/", public.message_receipt_view, name="message_receipt"),
]
