"""Every operation of the REST API fed what its OpenAPI schema allows and what it does not, by Schemathesis (the
fuzzer API clients are tried with), on objects that exist: it answers with a status and a JSON error, never a
server error. Derandomised with a fixed seed, so a run fails or passes the same way every time."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from cim.accounts.models import ApiToken
from cim.accounts.services import api_token_create
from cim.core.tests.api_world import path_world, world_create

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
schema.config.seed = 20261207


@pytest.fixture
def existing(admin_user):
    """The bearer header of an administrator's token, and for the operation's path the values that name objects
    that exist (made on first use: once per operation, whatever the number of examples)."""
    _token, raw = api_token_create(user=admin_user, scope=ApiToken.Scope.WRITE)
    made: dict = {}

    def values(path: str) -> dict:
        if not made:
            made.update(
                path_world(admin_user=admin_user, user=admin_user, path=path, tag=world_create(admin_user)).values
            )
        return made

    # Requests go through the WSGI handler, which closes the connection after each one; the test's transaction
    # lives on it (as Django's test client does, the handler is kept from closing it).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {raw}"}, values
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, existing):
    headers, values = existing
    if case.path_parameters:
        known = values(case.operation.path)
        case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
    response = case.call(headers=headers)
    assert response.status_code < 500, f"{case.as_curl_command()}\n{response.text[:500]}"
