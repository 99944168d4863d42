from django.urls import path

from cim.automation import views_messages_public as public

urlpatterns = [
    # Reached from messages, without a login: signed tokens only.
    path("m/o/<str:token>.gif", public.message_open_view, name="message_open"),
    path("m/c/<str:token>/", public.message_click_view, name="message_click"),
    path("m/u/<str:token>/", public.message_unsubscribe_view, name="message_unsubscribe"),
]
