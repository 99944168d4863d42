"""Customer care pages, under /care/ in the "automation" namespace."""

from django.urls import path

from cim.automation import views_care as views

urlpatterns = [
    path("care/", views.care_calendar_view, name="care_calendar"),
    path("care/day/", views.care_day_view, name="care_day"),
    path("care/plans/", views.care_plans_view, name="care_plans"),
    path("care/plans/new/", views.care_plan_create_view, name="care_plan_create"),
    path("care/plans/run/", views.care_run_view, name="care_run"),
    path("care/plans/<int:pk>/", views.care_plan_edit_view, name="care_plan_edit"),
    path("care/gifts/", views.gifts_view, name="care_gifts"),
    path("care/customers/<str:number>/gifts/", views.customer_gifts_view, name="care_customer_gifts"),
]
