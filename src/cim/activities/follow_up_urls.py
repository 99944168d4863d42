"""Follow-up, call-back plan and notification pages; included under /activities/ in the "activities" namespace."""

from django.urls import path

from cim.activities import views_follow_ups as views

urlpatterns = [
    path("follow-ups/", views.follow_ups_view, name="follow_ups"),
    path("follow-ups/overdue/", views.follow_ups_overdue_view, name="follow_ups_overdue"),
    path("follow-ups/new/", views.follow_up_create_view, name="follow_up_create"),
    path("follow-ups/owners/", views.follow_up_owners_view, name="follow_up_owners"),
    path("follow-ups/<int:pk>/", views.follow_up_view, name="follow_up"),
    path("follow-ups/<int:pk>/complete/", views.follow_up_complete_view, name="follow_up_complete"),
    path("follow-ups/<int:pk>/cancel/", views.follow_up_cancel_view, name="follow_up_cancel"),
    path("follow-ups/<int:pk>/reopen/", views.follow_up_reopen_view, name="follow_up_reopen"),
    path("customers/<str:number>/follow-ups/", views.customer_follow_ups_view, name="customer_follow_ups"),
    path("callback-plans/", views.callback_plans_view, name="callback_plans"),
    path("callback-plans/new/", views.callback_plan_create_view, name="callback_plan_create"),
    path("callback-plans/run/", views.callback_plans_run_view, name="callback_plans_run"),
    path("callback-plans/<int:pk>/", views.callback_plan_edit_view, name="callback_plan_edit"),
    path("notifications/", views.notifications_view, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all_view, name="notifications_read_all"),
    path("notifications/<int:pk>/read/", views.notification_read_view, name="notification_read"),
]
