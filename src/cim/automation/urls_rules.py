from django.urls import path

from cim.automation import rules_views

urlpatterns = [
    path("automation/rules/", rules_views.rule_list_view, name="rules"),
    path("automation/rules/new/", rules_views.rule_create_view, name="rule_create"),
    path("automation/rules/<int:pk>/", rules_views.rule_detail_view, name="rule"),
    path("automation/rules/<int:pk>/edit/", rules_views.rule_edit_view, name="rule_edit"),
    path("automation/rules/<int:pk>/activate/", rules_views.rule_activate_view, name="rule_activate"),
    path("automation/rules/<int:pk>/delete/", rules_views.rule_delete_view, name="rule_delete"),
]
