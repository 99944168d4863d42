from django.urls import path

from cim.service import views, views_public

app_name = "service"

urlpatterns = [
    path("service/tickets/", views.ticket_list_view, name="ticket_list"),
    # Before `service/tickets/<number>/`, which would otherwise match these words.
    path("service/tickets/mine/", views.my_tickets_view, name="my_tickets"),
    path("service/tickets/new/", views.ticket_create_view, name="ticket_create"),
    path("service/tickets/<str:number>/", views.ticket_detail_view, name="ticket_detail"),
    path("service/tickets/<str:number>/messages/", views.ticket_message_view, name="ticket_message"),
    path("service/tickets/<str:number>/transition/", views.ticket_transition_view, name="ticket_transition"),
    path("service/tickets/<str:number>/assign/", views.ticket_assign_view, name="ticket_assign"),
    path("service/tickets/<str:number>/escalate/", views.ticket_escalate_view, name="ticket_escalate"),
    path("service/tickets/<str:number>/survey/", views.ticket_survey_view, name="ticket_survey"),
    path("service/surveys/", views.survey_report_view, name="survey_report"),
    path("settings/sla/", views.sla_settings_view, name="sla_settings"),
    # The public survey page: no login, reached from an email or a text message.
    path("s/<str:token>/", views_public.survey_view, name="survey"),
]
