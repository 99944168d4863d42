"""Event sources and write keys: `cim ingest source create|list`, and the service under them."""

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import translation

from cim.accounts.roles import Role
from cim.audit.models import AuditEvent
from cim.customers.services import PermissionDenied
from cim.ingest.models import EventSource
from cim.ingest.sources import event_source_create, event_source_for_key, write_key_hash

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    with translation.override("en"):
        call_command("ingest", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_create_prints_a_write_key_that_authenticates():
    report = last_json(run("source", "create", "官网", "--channel", "website", "--json"))

    source = EventSource.objects.get(name="官网")
    assert event_source_for_key(report["write_key"]) == source
    assert (report["name"], report["source_channel"], report["write_key_prefix"]) == (
        "官网",
        "website",
        source.write_key_prefix,
    )
    assert source.write_key_hash == write_key_hash(report["write_key"]) != report["write_key"]
    assert report["write_key"].startswith(source.write_key_prefix)
    assert AuditEvent.objects.filter(action="event_source.create", target_id=str(source.pk)).exists()


def test_create_without_json_shows_the_key_and_a_summary():
    lines = run("source", "create", "App").strip().splitlines()
    assert event_source_for_key(lines[1]) is not None
    assert lines[-1].startswith("Event source “App” created")


def test_list_shows_prefixes_never_keys():
    key = last_json(run("source", "create", "官网", "--json"))["write_key"]
    output = run("source", "list", "--json")
    assert key not in output
    assert [s["name"] for s in last_json(output)["sources"]] == ["官网"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["source", "create", "  "], "name"),
        (["source", "create", "x", "--channel", "carrier-pigeon"], "invalid choice"),
    ],
)
def test_create_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not EventSource.objects.exists()


def test_a_name_is_used_once():
    run("source", "create", "官网")
    with pytest.raises(CommandError, match="already exists"):
        run("source", "create", "官网")


def test_turned_off_and_unknown_keys_do_not_authenticate():
    source, key = event_source_create(name="官网", actor=None)
    assert event_source_for_key("") is None and event_source_for_key(key + "x") is None
    EventSource.objects.filter(pk=source.pk).update(is_active=False)
    assert event_source_for_key(key) is None


def test_only_administrators_create_sources(users):
    with pytest.raises(PermissionDenied):
        event_source_create(name="官网", actor=users[Role.SALES])
    source, _key = event_source_create(name="官网", source_channel="app", actor=users[Role.ADMINISTRATOR])
    assert source.created_by == users[Role.ADMINISTRATOR]
    with pytest.raises(ValidationError):
        event_source_create(name="官网2", source_channel="nope", actor=None)
