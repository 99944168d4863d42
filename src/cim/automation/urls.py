from cim.automation import urls_campaigns

app_name = "automation"

urlpatterns = [*urls_campaigns.urlpatterns]
