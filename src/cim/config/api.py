import ninja.openapi.schema
from ninja import NinjaAPI

from cim.accounts.api import router as accounts_router
from cim.activities.api import router as activities_router
from cim.activities.follow_up_api import router as follow_ups_router
from cim.analytics.acquisition_api import router as acquisition_router
from cim.analytics.api import router as analytics_router
from cim.analytics.churn_api import router as churn_router
from cim.analytics.dashboard_api import router as dashboard_router
from cim.analytics.mining_api import router as mining_router
from cim.analytics.sentiment_api import router as sentiment_router
from cim.audit.api import router as audit_router
from cim.automation.campaigns_api import router as campaigns_router
from cim.automation.care_api import router as care_router
from cim.automation.messages_api import router as messages_router
from cim.automation.rules_api import router as rules_router
from cim.automation.webhooks_api import router as webhooks_router
from cim.backups.api import router as backups_router
from cim.core.api_auth import API_AUTH
from cim.core.api_errors import document_errors, install_error_handlers
from cim.core.api_parser import JSONObjectParser
from cim.core.openapi import UniqueNamesJsonSchema
from cim.customers.api import router as customers_router
from cim.customers.sharing_api import router as sharing_router
from cim.ingest.api import router as ingest_router
from cim.ingest.imports_api import router as imports_router
from cim.privacy.api import router as privacy_router
from cim.quality.api import router as quality_router
from cim.segments.api import router as segments_router
from cim.service.api import router as service_router

# ninja builds every operation's schema with this generator (its TODO: "check if definitions are unique").
ninja.openapi.schema.NinjaGenerateJsonSchema = UniqueNamesJsonSchema


class CimAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        return document_errors(super().get_openapi_schema(**kwargs))


api = CimAPI(
    title="CIM API",
    version="1",
    description="Customer Information Management. Authenticate with `Authorization: Bearer <token>` "
    "(create one on the API tokens page, with `POST /tokens` or `cim token create USER`). "
    "Errors are JSON: `code`, `message`, `details[]`.",
    auth=API_AUTH,
    parser=JSONObjectParser(),
    urls_namespace="api",
)
install_error_handlers(api)
# Before the customers router, whose `/customers/{number}` would otherwise take `/customers/export`.
api.add_router("/", ingest_router)
api.add_router("/", imports_router)
# Before the customers router too: `/customers/{number}/duplicates` is its own operation.
api.add_router("/", quality_router)
api.add_router("/", activities_router)
api.add_router("/", follow_ups_router)
api.add_router("/", privacy_router)
api.add_router("/", customers_router)
api.add_router("/", analytics_router)
api.add_router("/", churn_router)
api.add_router("/", mining_router)
api.add_router("/", acquisition_router)
api.add_router("/", dashboard_router)
api.add_router("/", sentiment_router)
api.add_router("/", segments_router)
api.add_router("/", rules_router)
api.add_router("/", care_router)
api.add_router("/", campaigns_router)
api.add_router("/", sharing_router)
api.add_router("/", service_router)
api.add_router("/", accounts_router)
api.add_router("/", audit_router)
api.add_router("/", backups_router)
api.add_router("/", webhooks_router)
api.add_router("/", messages_router)
