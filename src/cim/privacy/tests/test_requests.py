import csv
import datetime
import io
import json

import pytest
from django.core.exceptions import ValidationError

from cim.audit.models import AuditEvent
from cim.customers.tests.factories import make_customer
from cim.privacy.models import Consent, ErasureTombstone, ProcessingRestriction
from cim.privacy.requests import (
    package_download,
    request_complete,
    request_create,
    request_due_at,
    request_reject,
    request_start,
    request_verify,
)
from cim.privacy.selectors import consent_holds, request_list
from cim.privacy.services import consent_record
from cim.privacy.tests.helpers import CANARIES, make_canary

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


@pytest.mark.parametrize(
    ("law", "received", "due"),
    [
        ("pipl", datetime.datetime(2026, 1, 31, 9, tzinfo=UTC), datetime.datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("gdpr", datetime.datetime(2026, 1, 31, 9, tzinfo=UTC), datetime.datetime(2026, 2, 28, 9, tzinfo=UTC)),
        ("gdpr", datetime.datetime(2026, 3, 15, 9, tzinfo=UTC), datetime.datetime(2026, 4, 15, 9, tzinfo=UTC)),
        ("gdpr", datetime.datetime(2028, 1, 31, 9, tzinfo=UTC), datetime.datetime(2028, 2, 29, 9, tzinfo=UTC)),
    ],
)
def test_due_dates_follow_the_law(law, received, due):
    assert request_due_at(law=law, received_at=received) == due


def test_the_workflow_goes_received_verified_in_progress_completed(admin_user):
    customer = make_customer(admin_user)
    request = request_create(customer=customer, kind="rectification", law="gdpr", actor=admin_user)
    with pytest.raises(ValidationError):
        request_complete(request=request, actor=admin_user)  # not verified yet
    with pytest.raises(ValidationError):
        request_verify(request=request, method="", actor=admin_user)
    request_verify(request=request, method="id_document", actor=admin_user)
    request_start(request=request, actor=admin_user)
    request_complete(request=request, actor=admin_user, note="地址已更正")
    assert request.status == "completed" and request.completed_at is not None
    with pytest.raises(ValidationError):
        request_start(request=request, actor=admin_user)


def test_a_rejection_needs_a_reason(admin_user):
    request = request_create(customer=make_customer(admin_user), kind="access", actor=admin_user)
    with pytest.raises(ValidationError):
        request_reject(request=request, reason="", actor=admin_user)
    request_reject(request=request, reason="无法核实身份", actor=admin_user)
    assert request.status == "rejected" and request.rejection_reason == "无法核实身份"


def test_overdue_requests_are_listed(admin_user):
    customer = make_customer(admin_user)
    old = request_create(
        customer=customer,
        kind="access",
        received_at=datetime.datetime(2026, 1, 1, tzinfo=UTC),
        actor=admin_user,
    )
    request_create(customer=customer, kind="access", actor=admin_user)
    assert list(request_list(overdue=True)) == [old]
    assert old.is_overdue


def test_the_access_package_holds_everything_registered_and_is_audited(admin_user):
    customer = make_canary(admin_user)
    request = request_create(customer=customer, kind="access", actor=admin_user)
    with pytest.raises(ValidationError):
        package_download(request=request, fmt="json", actor=admin_user)
    request_verify(request=request, method="sms_code", actor=admin_user)

    content, content_type, name = package_download(request=request, fmt="json", actor=admin_user)
    package = json.loads(content)
    assert content_type == "application/json" and name.endswith(".json")
    text = content.decode()
    for key in ("name", "phone", "email", "street", "notes", "interaction", "event", "form", "ticket"):
        assert CANARIES[key] in text, key
    assert package["data"]["customers.customer"][0]["number"] == customer.number
    assert "search.searchdocument" not in package["data"]

    content, content_type, _name = package_download(request=request, fmt="csv", actor=admin_user)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["table", "id", "field", "value"]
    assert [
        "customers.email",
        rows[[r[0] for r in rows].index("customers.email")][1],
        "address",
        CANARIES["email"],
    ] in rows
    assert AuditEvent.objects.filter(action="privacy.package_download", target_id=str(request.pk)).count() == 2


def test_completing_an_erasure_request_erases_and_links_the_tombstone(admin_user):
    customer = make_customer(admin_user, display_name="王五")
    request = request_create(customer=customer, kind="erasure", actor=admin_user)
    request_verify(request=request, method="in_person", actor=admin_user)
    request_complete(request=request, actor=admin_user)
    customer.refresh_from_db()
    assert "王五" not in customer.display_name
    assert ErasureTombstone.objects.get(customer_id=customer.pk).request_id == request.pk


def test_completing_restriction_and_withdrawal_requests(admin_user):
    customer = make_customer(admin_user)
    consent_record(customer=customer, purpose="marketing", text="同意", text_version="v1", actor=None)
    consent_record(customer=customer, purpose="research", text="同意", text_version="v1", actor=None)
    for kind in ("withdrawal", "restriction"):
        request = request_create(customer=customer, kind=kind, actor=admin_user)
        request_verify(request=request, method="account", actor=admin_user)
        request_complete(request=request, actor=admin_user)
    assert consent_holds([customer.pk], "marketing") == set() == consent_holds([customer.pk], "research")
    assert Consent.objects.filter(customer=customer, granted=False).count() == 2
    assert ProcessingRestriction.objects.filter(customer=customer).exists()


def test_requests_need_the_privacy_right(users):
    from cim.customers.services import PermissionDenied

    with pytest.raises(PermissionDenied):
        request_create(customer=None, kind="access", actor=users["manager"])
