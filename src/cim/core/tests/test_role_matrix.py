"""Who may call what: every API operation × every role. A new endpoint without a row here fails the suite."""

import base64
import json

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from cim.accounts.roles import Role
from cim.config.api import api
from cim.customers import configuration
from cim.customers.models import Customer
from cim.customers.services import customer_archive
from cim.customers.tests.factories import make_customer
from cim.ingest.sources import event_source_create
from cim.quality.merge import customer_merge
from cim.quality.models import DuplicateCandidate

ALL = frozenset(Role)
EDITORS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE})
ARCHIVERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES})
TAGGERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.SALES, Role.SERVICE, Role.MARKETING})
ADMINS = frozenset({Role.ADMINISTRATOR})
EXPORTERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER, Role.MARKETING, Role.ANALYST})
MERGERS = frozenset({Role.ADMINISTRATOR, Role.MANAGER})

# (method, OpenAPI path) → the roles allowed to call it.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/customers"): ALL,
    ("GET", "/api/v1/customers/export"): EXPORTERS,
    ("POST", "/api/v1/customers"): EDITORS,
    ("GET", "/api/v1/customers/{number}"): ALL,
    ("PATCH", "/api/v1/customers/{number}"): EDITORS,
    ("POST", "/api/v1/customers/{number}/archive"): ARCHIVERS,
    ("POST", "/api/v1/customers/{number}/restore"): ARCHIVERS,
    ("POST", "/api/v1/customers/bulk-tag"): TAGGERS,
    ("GET", "/api/v1/tags"): ALL,
    ("POST", "/api/v1/tags"): ADMINS,
    ("PATCH", "/api/v1/tags/{tag_id}"): ADMINS,
    ("GET", "/api/v1/custom-fields"): ALL,
    ("POST", "/api/v1/custom-fields"): ADMINS,
    ("PATCH", "/api/v1/custom-fields/{key}"): ADMINS,
    ("GET", "/api/v1/customers/{number}/duplicates"): ALL,
    ("GET", "/api/v1/duplicates"): ALL,
    ("POST", "/api/v1/duplicates/{pair_id}"): EDITORS,
    ("POST", "/api/v1/duplicates/scan"): ADMINS,
    ("POST", "/api/v1/merges"): MERGERS,
    ("POST", "/api/v1/merges/{merge_id}/unmerge"): MERGERS,
}

# A valid body per operation, so that the role is the only thing that varies.
BODIES = {
    ("POST", "/api/v1/customers"): {"display_name": "新客户", "phones": [{"number": "13812345678"}]},
    ("PATCH", "/api/v1/customers/{number}"): {"alias": "老客户"},
    ("POST", "/api/v1/customers/{number}/archive"): {"reason": "重复"},
    ("POST", "/api/v1/customers/{number}/restore"): {},
    ("POST", "/api/v1/customers/bulk-tag"): {"numbers": ["{number}"], "add": ["重点"]},
    ("POST", "/api/v1/tags"): {"name": "新标签", "color": "#112233"},
    ("PATCH", "/api/v1/tags/{tag_id}"): {"description": "改过"},
    ("POST", "/api/v1/custom-fields"): {
        "key": "budget",
        "label_zh": "预算",
        "label_en": "Budget",
        "field_type": "number",
    },
    ("PATCH", "/api/v1/custom-fields/{key}"): {"label_en": "Level"},
    ("POST", "/api/v1/duplicates/{pair_id}"): {"status": "distinct"},
    ("POST", "/api/v1/duplicates/scan"): {},
    ("POST", "/api/v1/merges"): {"survivor": "{number}", "duplicates": ["{other}"]},
    ("POST", "/api/v1/merges/{merge_id}/unmerge"): {},
}


def _operations() -> set[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_api_operation_has_a_row():
    operations = _operations()
    missing = operations - set(MATRIX)
    stale = set(MATRIX) - operations
    assert not missing, f"add these operations to MATRIX: {sorted(missing)}"
    assert not stale, f"these MATRIX rows match no operation: {sorted(stale)}"


def test_every_row_names_known_roles():
    for roles in MATRIX.values():
        assert roles <= ALL


@pytest.fixture
def world(users, admin_user):
    tag = configuration.tag_create(name="VIP", actor=admin_user)
    configuration.custom_field_create(
        key="level", label_zh="等级", label_en="Tier", field_type="choice", choices=["金"], actor=admin_user
    )
    return {"tag": tag}


def _call(client: Client, method: str, path: str, body):
    if method == "GET":
        return client.get(path)
    return getattr(client, method.lower())(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_role_matrix(api_client, users, admin_user, world, role, method, path):
    user = users[role]
    # The user's own customer, in their team: inside every role's record scope.
    customer = make_customer(admin_user, display_name="矩阵客户", owner_id=user.pk, team_id=user.team_id)
    if path.endswith("/restore"):
        customer_archive(customer=customer, actor=admin_user)
    # A second customer of theirs, a pair of the two, and a merge of them, for the data-quality operations.
    other = make_customer(admin_user, display_name="矩阵客户乙", owner_id=user.pk, team_id=user.team_id)
    pair = DuplicateCandidate.objects.create(customer=other, other=customer, reason="model", detected_by="test")
    merge_id = customer_merge(survivor=customer, duplicates=[other], actor=admin_user).pk if "merge_id" in path else 0
    url = path.format(number=customer.number, tag_id=world["tag"].pk, key="level", pair_id=pair.pk, merge_id=merge_id)
    body = json.loads(
        json.dumps(BODIES.get((method, path))).replace("{number}", customer.number).replace("{other}", other.number)
    )
    before = (Customer.objects.count(), customer.status)

    response = _call(api_client(user), method, url, body)

    if role in MATRIX[(method, path)]:
        assert 200 <= response.status_code < 300, (role, method, path, response.content[:300])
    else:
        assert response.status_code == 403, (role, method, path, response.content[:300])
        assert response.json()["code"] == "permission_denied"
        customer.refresh_from_db()
        assert (Customer.objects.count(), customer.status) == before
        assert customer.alias == ""
        assert not customer.tags.exists()


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
def test_every_operation_needs_authentication(world, admin_user, method, path):
    customer = make_customer(admin_user)
    url = path.format(number=customer.number, tag_id=world["tag"].pk, key="level", pair_id=1, merge_id=1)
    response = _call(Client(), method, url, BODIES.get((method, path)))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- Public endpoints outside /api/v1/: the tracking API, authenticated by a source's write key, never by a user

# (method, path) → a valid body. Every role, and nobody logged in, gets the same answers.
PUBLIC: dict[tuple[str, str], dict] = {
    ("POST", "/ingest/v1/identify"): {"userId": "u-1", "traits": {"name": "矩阵客户"}},
    ("POST", "/ingest/v1/track"): {"userId": "u-1", "event": "Signed Up"},
    ("POST", "/ingest/v1/page"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/screen"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/group"): {"userId": "u-1", "groupId": "g-1"},
    ("POST", "/ingest/v1/alias"): {"userId": "u-1", "previousId": "a-1"},
    ("POST", "/ingest/v1/batch"): {"batch": [{"type": "track", "userId": "u-1", "event": "Signed Up"}]},
    # analytics.js's short paths: the first letter of the type.
    ("POST", "/ingest/v1/i"): {"userId": "u-1", "traits": {"name": "矩阵客户"}},
    ("POST", "/ingest/v1/t"): {"userId": "u-1", "event": "Signed Up"},
    ("POST", "/ingest/v1/p"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/s"): {"anonymousId": "a-1", "name": "Home"},
    ("POST", "/ingest/v1/g"): {"userId": "u-1", "groupId": "g-1"},
    ("POST", "/ingest/v1/a"): {"userId": "u-1", "previousId": "a-1"},
    ("POST", "/ingest/v1/b"): {"batch": [{"type": "track", "userId": "u-1", "event": "Signed Up"}]},
}


def _tracking_paths(resolver=None, prefix="/") -> set[str]:
    """Every fixed URL under /ingest/v1/ (the catch-all that answers a JSON 404 aside)."""
    paths = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths |= _tracking_paths(pattern, route)
        elif route.startswith("/ingest/v1/") and "<" not in route:
            paths.add(route)
    return paths


def test_every_tracking_endpoint_has_a_row():
    assert _tracking_paths() == {path for _, path in PUBLIC}


@pytest.mark.parametrize("role", [None, *Role])
@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_tracking_endpoints_take_a_write_key_not_a_user(users, api_client, role, method, path):
    _source, write_key = event_source_create(name="矩阵", actor=None)
    client = Client()
    if role is not None:
        client = api_client(users[role])
        client.force_login(users[role])
    body = json.dumps(PUBLIC[(method, path)])

    refused = client.post(path, data=body, content_type="application/json")
    basic = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    accepted = client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=basic)

    assert refused.status_code == 401 and refused.json()["code"] == "missing_write_key", refused.content[:300]
    assert accepted.status_code == 200, (role, path, accepted.content[:300])
