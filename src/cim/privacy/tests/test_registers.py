import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cim.audit.models import AuditEvent
from cim.privacy.models import BreachIncident, CrossBorderTransfer, ImpactAssessment
from cim.privacy.registers import register_save

pytestmark = pytest.mark.django_db


def test_a_breach_shows_its_72_hour_deadline_and_is_overdue_until_notified(admin_user):
    detected = timezone.now() - datetime.timedelta(hours=80)
    breach = register_save(
        instance=BreachIncident(),
        data={
            "title": "邮件误发",
            "detected_at": detected,
            "nature": "名单误发给外部",
            "data_categories": "姓名、邮箱",
        },
        actor=admin_user,
    )
    assert breach.authority_due_at == detected + datetime.timedelta(hours=72)
    assert breach.is_overdue
    register_save(instance=breach, data={"authority_notified_at": timezone.now()}, actor=admin_user)
    assert not breach.is_overdue
    assert AuditEvent.objects.filter(action="privacy.breachincident_update", fields=["authority_notified_at"]).exists()


def test_transfers_keep_counts_per_year_and_refuse_bad_ones(admin_user):
    data = {
        "recipient": "Acme GmbH",
        "country": "德国",
        "purpose": "售后服务",
        "legal_basis": "standard_contract",
        "data_categories": "姓名、电话",
        "yearly_counts": {"2025": 8000, "2026": 9500},
    }
    transfer = register_save(instance=CrossBorderTransfer(), data=data, actor=admin_user)
    assert transfer.yearly_counts["2026"] == 9500
    with pytest.raises(ValidationError) as error:
        register_save(instance=transfer, data={"yearly_counts": {"今年": -1}}, actor=admin_user)
    assert "yearly_counts" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        register_save(instance=CrossBorderTransfer(), data={**data, "legal_basis": "handshake"}, actor=admin_user)
    assert "legal_basis" in error.value.message_dict


def test_assessments_need_risks_measures_and_a_conclusion(admin_user, users):
    from cim.customers.services import PermissionDenied

    with pytest.raises(ValidationError) as error:
        register_save(instance=ImpactAssessment(), data={"subject": "会员画像"}, actor=admin_user)
    assert {"risks", "measures", "conclusion", "assessed_on"} <= set(error.value.message_dict)
    with pytest.raises(PermissionDenied):
        register_save(instance=ImpactAssessment(), data={"subject": "x"}, actor=users["manager"])


def test_a_register_entry_patched_through_the_api_keeps_its_checks(admin_user, api_client):
    client = api_client(admin_user)
    created = client.post(
        "/api/v1/privacy/transfers",
        {"recipient": "Acme GmbH", "country": "德国", "purpose": "售后", "legal_basis": "standard_contract",
         "data_categories": "姓名"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    url = f"/api/v1/privacy/transfers/{created.json()['id']}"
    assert client.patch(url, {"notes": None}, content_type="application/json").status_code == 422
    assert client.patch(url, {"recipient": ""}, content_type="application/json").status_code == 422
    changed = client.patch(url, {"notes": "每年复核"}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["notes"] == "每年复核"
    assert changed.json()["recipient"] == "Acme GmbH"
    with pytest.raises(ValidationError) as error:
        register_save(instance=CrossBorderTransfer.objects.get(), data={"notes": None}, actor=admin_user)
    assert error.value.message_dict == {"notes": ["This field cannot be null."]}


def test_a_time_with_any_offset_is_stored_as_its_instant(admin_user, api_client):
    """RFC 3339 allows offsets up to ±23:59, PostgreSQL up to ±15:59: the time is written in UTC."""
    body = {"title": "误发", "detected_at": "2026-05-01T10:00:00+23:00", "nature": "n", "data_categories": "姓名"}
    created = api_client(admin_user).post("/api/v1/privacy/breaches", body, content_type="application/json")
    assert created.status_code == 201, created.content
    stored = BreachIncident.objects.get().detected_at
    assert stored == datetime.datetime(2026, 4, 30, 11, 0, tzinfo=datetime.UTC)
