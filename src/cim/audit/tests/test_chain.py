"""The HMAC chain: appends link, bulk appends link set-based, and verify finds a changed, deleted or moved event."""

import io
import json
import threading

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, connections

from cim.audit.chain import chain_existing, chain_verify, link
from cim.audit.models import AuditChainHead, AuditEvent, FieldChange
from cim.audit.services import audit_record, audit_record_bulk

pytestmark = pytest.mark.django_db


def _events(n: int, admin_user=None):
    for i in range(n):
        audit_record(actor=admin_user, action="test.event", target=None, target_type="test", target_id=str(i))


def _sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{t}", connection.ops.quote_name(AuditEvent._meta.db_table)), params)


def test_appends_are_numbered_and_linked(admin_user):
    before = AuditChainHead.objects.get(pk=1).seq
    _events(3, admin_user)
    events = list(AuditEvent.objects.filter(action="test.event").order_by("seq"))
    assert [e.seq for e in events] == [before + 1, before + 2, before + 3]
    assert AuditChainHead.objects.get(pk=1).seq == before + 3
    assert AuditChainHead.objects.get(pk=1).chain == events[-1].chain
    assert all(len(e.chain) == 64 for e in events)


def test_untouched_log_verifies(admin_user):
    _events(5, admin_user)
    audit_record_bulk(
        actor=admin_user,
        action="test.bulk",
        target_type="test",
        target_ids=range(10),
        fields=["x", "名字"],
        note='导入 "客户.csv"\n第二行',
    )
    result = chain_verify(batch_size=3)  # several batches
    assert result.ok, result.message
    assert result.checked == AuditEvent.objects.count() == result.last_seq


def test_bulk_appends_link_to_single_appends_and_keep_changes(admin_user):
    _events(2, admin_user)
    count = audit_record_bulk(
        actor=admin_user,
        action="test.bulk",
        target_type="test",
        target_ids=[7, 8],
        changes={7: {"stage": ("new", "loyal")}, 8: {"stage": ("new", "churned")}},
    )
    _events(1, admin_user)
    assert count == 2
    assert chain_verify().ok
    changes = FieldChange.objects.filter(event__action="test.bulk").order_by("event__target_id")
    assert [(c.event.target_id, c.field, c.old_value, c.new_value) for c in changes] == [
        ("7", "stage", "new", "loyal"),
        ("8", "stage", "new", "churned"),
    ]


def test_altered_row_fails_at_that_row(admin_user):
    _events(6, admin_user)
    victim = AuditEvent.objects.order_by("seq")[3]
    _sql("UPDATE {t} SET note = %s WHERE id = %s", ["edited", victim.pk])
    result = chain_verify(batch_size=2)
    assert not result.ok
    assert (result.problem, result.seq, result.event_id) == ("changed", victim.seq, victim.pk)
    assert result.checked == victim.seq - 1


def test_changed_actor_or_time_is_caught(admin_user, users):
    _events(3, admin_user)
    victim = AuditEvent.objects.order_by("seq")[1]
    _sql("UPDATE {t} SET actor_id = %s WHERE id = %s", [users["sales"].pk, victim.pk])
    assert chain_verify().seq == victim.seq


def test_deleted_row_is_a_gap(admin_user):
    _events(5, admin_user)
    victim = AuditEvent.objects.order_by("seq")[2]
    _sql("DELETE FROM {t} WHERE id = %s", [victim.pk])
    result = chain_verify()
    assert not result.ok
    assert (result.problem, result.seq) == ("deleted", victim.seq)


def test_deleted_last_rows_are_caught_by_the_head(admin_user):
    _events(4, admin_user)
    last = AuditEvent.objects.order_by("-seq").first()
    _sql("DELETE FROM {t} WHERE id = %s", [last.pk])
    result = chain_verify()
    assert (result.ok, result.problem, result.seq) == (False, "truncated", last.seq)


def test_swapped_rows_are_reported_as_moved(admin_user):
    _events(6, admin_user)
    first, second = AuditEvent.objects.order_by("seq")[1], AuditEvent.objects.order_by("seq")[4]
    columns = ["at", "actor_id", "action", "target_type", "target_id", "fields", "request_id", "note"]
    for event, other in ((first, second), (second, first)):
        values = [getattr(other, c) for c in columns]
        values[5] = json.dumps(values[5])
        assignments = ", ".join(f"{connection.ops.quote_name(c)} = %s" for c in columns)
        _sql(f"UPDATE {{t}} SET {assignments} WHERE id = %s", [*values, event.pk])
    result = chain_verify()
    assert not result.ok
    assert (result.problem, result.seq, result.event_id) == ("reordered", first.seq, first.pk)


def test_wiping_field_changes_keeps_the_chain(admin_user):
    audit_record(actor=admin_user, action="test.change", target=admin_user, changes={"email": ("a@x.cn", "b@x.cn")})
    FieldChange.objects.update(old_value="", new_value="")  # what erasure does
    assert chain_verify().ok


def test_another_key_fails_from_the_first_event(admin_user):
    _events(2, admin_user)
    result = chain_verify(key=b"not the key")
    assert (result.ok, result.seq) == (False, AuditEvent.objects.order_by("seq").first().seq)


def test_data_migration_chains_existing_rows(admin_user):
    _events(4, admin_user)
    # Rows written before the chain: numbered and linked in id order by the migration's function.
    _sql("UPDATE {t} SET seq = seq + 1000000, chain = ''")
    chain_existing(apps, batch_size=3)
    ids = list(AuditEvent.objects.order_by("id").values_list("seq", flat=True))
    assert ids == list(range(1, len(ids) + 1))
    assert chain_verify().ok


def test_canonical_form_is_stable():
    from datetime import UTC, datetime

    row = (1, datetime(2026, 12, 3, 8, 0, tzinfo=UTC), 5, "a.b", "t", "9", ["f"], "rid", "备注")
    assert link(b"k", "", row) == link(b"k", "", row)
    assert link(b"k", "", row) != link(b"k", "x", row)


def test_cli_verify_ok_and_broken(admin_user):
    _events(3, admin_user)
    out = io.StringIO()
    call_command("audit", "verify", "--json", stdout=out, verbosity=0)
    report = json.loads(out.getvalue().splitlines()[-1])
    assert (
        report["ok"] and report["checked"] == AuditEvent.objects.count() - 1
    )  # the verification itself is recorded after
    out = io.StringIO()
    call_command("audit", "verify", stdout=out, verbosity=0)
    assert "the chain is intact" in out.getvalue()
    victim = AuditEvent.objects.order_by("seq")[1]
    _sql("UPDATE {t} SET action = %s WHERE id = %s", ["x", victim.pk])
    with pytest.raises(CommandError, match=f"Event {victim.seq} \\(id {victim.pk}\\) was changed"):
        call_command("audit", "verify", stdout=io.StringIO(), verbosity=0)


def test_cli_export(admin_user, users, tmp_path):
    _events(3, admin_user)
    target = tmp_path / "audit.csv"
    out = io.StringIO()
    call_command(
        "audit",
        "export",
        "--user",
        users["auditor"].username,
        "--output",
        str(target),
        "--action",
        "test.event",
        stdout=out,
        verbosity=0,
    )
    lines = target.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 4 and "Exported 3 audit events" in out.getvalue()
    assert AuditEvent.objects.filter(action="audit.export", actor=users["auditor"]).exists()
    with pytest.raises(CommandError, match="does not allow"):
        call_command("audit", "export", "--user", users["sales"].username, "--output", str(target), verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_share_a_link(make_user):
    """Two connections appending at once (PostgreSQL: the head row lock orders them)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time; the in-memory test database is shared-cache, not WAL")
    user = make_user("administrator", "racer")
    errors = []

    def writer(n):
        try:
            for i in range(25):
                audit_record(actor=user, action="test.race", target=None, target_type="t", target_id=f"{n}-{i}")
                if i % 5 == 0:
                    audit_record_bulk(actor=user, action="test.race", target_type="t", target_ids=range(3))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert AuditEvent.objects.filter(action="test.race").count() == 2 * (25 + 5 * 3)
    assert chain_verify().ok


def test_a_missing_head_starts_where_the_log_ends(admin_user):
    _events(2, admin_user)
    last = AuditEvent.objects.order_by("-seq").first()
    AuditChainHead.objects.all().delete()  # e.g. a test database flushed between tests
    _events(1, admin_user)
    assert AuditEvent.objects.order_by("-seq").first().seq == last.seq + 1
    assert chain_verify().ok
