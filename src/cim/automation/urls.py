from cim.automation.urls_messages import urlpatterns as messages_urls
from cim.automation.urls_rules import urlpatterns as rules_urls
from cim.automation.urls_webhooks import urlpatterns as webhooks_urls

app_name = "automation"

urlpatterns = [*messages_urls, *rules_urls, *webhooks_urls]
