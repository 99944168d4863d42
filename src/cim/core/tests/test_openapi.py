"""The OpenAPI schema that clients are generated from: each class has its own component, errors are declared."""

from cim.activities.models import Order
from cim.service.models import Ticket


def _ref(schema: dict, property_schema: dict) -> dict:
    while "$ref" in property_schema or "allOf" in property_schema:
        property_schema = property_schema.get("allOf", [property_schema])[0]
        if "$ref" in property_schema:
            property_schema = schema["components"]["schemas"][property_schema["$ref"].split("/")[-1]]
    return property_schema


def _response(schema: dict, path: str) -> dict:
    body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return _ref(schema, body)


def test_classes_of_the_same_name_keep_their_own_components(client):
    schema = client.get("/api/v1/openapi.json").json()
    ticket = _response(schema, "/api/v1/tickets/{ticket_number}")
    order = _response(schema, "/api/v1/orders/{order_id}")
    assert _ref(schema, ticket["properties"]["status"])["enum"] == Ticket.Status.values
    assert _ref(schema, order["properties"]["status"])["enum"] == Order.Status.values
    assert "CampaignStatus" in schema["components"]["schemas"]


def test_the_openapi_schema_documents_the_json_errors(client):
    schema = client.get("/api/v1/openapi.json").json()
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message", "details"]
    one = schema["paths"]["/api/v1/customers/{number}"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(one)
    assert one["404"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    created = schema["paths"]["/api/v1/customers"]["post"]["responses"]
    assert {"201", "400", "404", "409", "422"} <= set(created)
