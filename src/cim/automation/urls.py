from cim.automation import urls_care

app_name = "automation"

urlpatterns = [*urls_care.urlpatterns]
