from django.urls import path

from cim.analytics import views, views_acquisition, views_churn, views_dashboard, views_mining, views_sentiment

app_name = "analytics"

urlpatterns = [
    path("analytics/", views.analytics_view, name="overview"),
    path("analytics/acquisition/", views_acquisition.acquisition_view, name="acquisition"),
    path("analytics/clusters/", views_mining.clusters_view, name="clusters"),
    path("analytics/rules/", views_mining.rules_view, name="rules"),
    path("analytics/feedback/", views_sentiment.feedback_view, name="feedback"),
    path("analytics/churn/", views_churn.churn_view, name="churn"),
    path("dashboard/", views_dashboard.dashboard_view, name="dashboard"),
    path("analytics/reports/", views_dashboard.schedules_view, name="schedules"),
    path("analytics/reports/<int:schedule_id>/", views_dashboard.schedule_edit_view, name="schedule_edit"),
    path("analytics/reports/<int:schedule_id>/delete/", views_dashboard.schedule_delete_view, name="schedule_delete"),
    path(
        "analytics/reports/<int:schedule_id>/download/",
        views_dashboard.schedule_download_view,
        name="schedule_download",
    ),
]
