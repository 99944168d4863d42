import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cim.customers.tests.factories import make_customer
from cim.privacy.models import BreachIncident, Consent, CrossBorderTransfer, DataSubjectRequest, RetentionRule
from cim.privacy.requests import request_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    return client


def _client(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_customer_page_shows_the_ledger_and_records_consent(admin_user, admin_client):
    customer = make_customer(admin_user)
    url = reverse("customers:detail", args=[customer.number])
    page = admin_client.get(url).content.decode()
    assert 'id="privacy"' in page and "Marketing messages" in page and 'id="erase-link"' in page

    response = admin_client.post(
        reverse("privacy:consent_record", args=[customer.number]),
        {"purpose": "cross_border", "granted": "1", "text": "同意出境", "text_version": "2026-12", "channel": ""},
    )
    assert response.status_code == 302
    consent = Consent.objects.get(customer=customer)
    assert consent.purpose == "cross_border" and consent.text_sha256
    assert "2026-12" in admin_client.get(url).content.decode()

    response = admin_client.post(
        reverse("privacy:consent_record", args=[customer.number]),
        {"purpose": "cross_border", "granted": "1"},
        follow=True,
    )
    assert "This field is required" in response.content.decode()
    assert Consent.objects.count() == 1


def test_the_erase_link_is_for_administrators_only(users, admin_user):
    customer = make_customer(admin_user, owner_id=users["manager"].pk)
    page = _client(users["manager"]).get(reverse("customers:detail", args=[customer.number])).content.decode()
    assert 'id="privacy"' in page and 'id="erase-link"' not in page
    assert _client(users["manager"]).get(reverse("privacy:erase", args=[customer.number])).status_code == 403
    assert _client(users["sales"]).get(reverse("privacy:requests")).status_code == 403


def test_erasure_from_the_page_needs_the_typed_number(admin_user, admin_client):
    customer = make_customer(admin_user, display_name="赵六")
    url = reverse("privacy:erase", args=[customer.number])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"confirm": "WRONG", "reason": "本人要求"})
    assert response.status_code == 200 and "Type the customer number exactly" in response.content.decode()
    customer.refresh_from_db()
    assert customer.display_name == "赵六"

    response = admin_client.post(url, {"confirm": customer.number, "reason": "本人要求"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert "赵六" not in customer.display_name


def test_the_request_register_flags_overdue_requests_and_moves_them_on(admin_user, admin_client):
    customer = make_customer(admin_user)
    old = request_create(
        customer=customer, kind="access", received_at=timezone.now() - datetime.timedelta(days=40), actor=admin_user
    )
    page = admin_client.get(reverse("privacy:requests")).content.decode()
    assert 'id="overdue-alert"' in page and old.reference in page

    response = admin_client.post(
        reverse("privacy:request_create"), {"customer": customer.number, "kind": "portability", "law": "gdpr"}
    )
    created = DataSubjectRequest.objects.get(kind="portability")
    assert response.status_code == 302 and created.law == "gdpr"
    response = admin_client.post(
        reverse("privacy:request_create"), {"customer": "C999999", "kind": "erasure", "law": "pipl"}
    )
    assert "No such customer" in response.content.decode()

    detail = reverse("privacy:request", args=[created.pk])
    response = admin_client.post(detail, {"action": "complete"})
    assert "Verify the requester" in response.content.decode() or "cannot become" in response.content.decode()
    admin_client.post(detail, {"action": "verify", "identity_method": "id_document"})
    created.refresh_from_db()
    assert created.status == "verified"

    download = admin_client.get(reverse("privacy:request_package", args=[created.pk, "csv"]))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert customer.number in download.content.decode("utf-8-sig")


def test_retention_page_creates_rules_and_counts_them(admin_user, admin_client):
    url = reverse("privacy:retention")
    admin_client.post(url, {"name": "表单90天", "action": "delete_submissions", "days": "90", "enabled": "on"})
    rule = RetentionRule.objects.get()
    assert rule.days == 90
    response = admin_client.post(url, {"name": "坏的", "action": "delete_submissions", "days": "0"})
    assert response.status_code == 200 and RetentionRule.objects.count() == 1
    fragment = admin_client.get(reverse("privacy:retention_dry_run", args=[rule.pk])).content.decode()
    assert 'data-dry-run="0"' in fragment
    admin_client.post(reverse("privacy:retention_apply", args=[rule.pk]), {"toggle": "1"})
    rule.refresh_from_db()
    assert not rule.enabled


def test_registers_pages_create_and_edit(admin_user, admin_client):
    response = admin_client.post(
        reverse("privacy:register_create", args=["breaches"]),
        {
            "title": "笔记本丢失",
            "detected_at": (timezone.localtime() - datetime.timedelta(days=4)).strftime("%Y-%m-%dT%H:%M"),
            "nature": "笔记本电脑丢失",
            "data_categories": "姓名、电话",
            "approx_subjects": "120",
        },
    )
    assert response.status_code == 302
    breach = BreachIncident.objects.get()
    page = admin_client.get(reverse("privacy:register", args=["breaches"])).content.decode()
    assert 'id="breach-overdue"' in page and "笔记本丢失" in page

    response = admin_client.post(
        reverse("privacy:register_create", args=["transfers"]),
        {
            "recipient": "Acme",
            "country": "DE",
            "purpose": "p",
            "legal_basis": "scc",
            "data_categories": "姓名",
            "yearly_counts": '{"2026": "many"}',
        },
    )
    assert response.status_code == 200 and not CrossBorderTransfer.objects.exists()
    assert "whole numbers" in response.content.decode()
    edit = reverse("privacy:register_edit", args=["breaches", breach.pk])
    assert admin_client.get(edit).status_code == 200
    assert admin_client.get(reverse("privacy:register", args=["nothing"])).status_code == 404
    for register in ("transfers", "assessments"):
        assert admin_client.get(reverse("privacy:register", args=[register])).status_code == 200
        assert admin_client.get(reverse("privacy:register_create", args=[register])).status_code == 200
