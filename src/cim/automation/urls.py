from cim.automation import urls_campaigns
from cim.automation.urls_messages import urlpatterns as messages_urls

app_name = "automation"

urlpatterns = [*messages_urls, *urls_campaigns.urlpatterns]
