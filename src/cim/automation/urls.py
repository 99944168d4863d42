from cim.automation.urls_campaigns import urlpatterns as campaigns_urls
from cim.automation.urls_care import urlpatterns as care_urls
from cim.automation.urls_messages import urlpatterns as messages_urls
from cim.automation.urls_rules import urlpatterns as rules_urls
from cim.automation.urls_webhooks import urlpatterns as webhooks_urls

app_name = "automation"

urlpatterns = [*campaigns_urls, *care_urls, *messages_urls, *rules_urls, *webhooks_urls]
