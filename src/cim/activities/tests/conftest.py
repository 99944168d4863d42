import base64

import pytest

from cim.ingest.sources import event_source_create


@pytest.fixture
def web(db):
    """A web site's event source and its write key."""
    return event_source_create(name="官网", source_channel="website", actor=None)


@pytest.fixture
def source(web):
    return web[0]


@pytest.fixture
def write_key(web):
    return web[1]


@pytest.fixture
def basic_auth(write_key):
    """The header Segment's SDKs send: the write key as the basic-auth user, no password."""
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
