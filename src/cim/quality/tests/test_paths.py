"""The same likely duplicate is found whichever way the second record comes in: a page, the API, a public
form, an import, or a scan (an app's identify call takes the customer its phone names instead)."""

import base64
import json

import pytest
from django.test import Client
from django.urls import reverse

from cim.customers.models import Customer
from cim.customers.tests.factories import make_customer
from cim.ingest.collection import collection_form_create
from cim.ingest.services import import_job_create, import_run
from cim.ingest.sources import event_source_create
from cim.ingest.tests.test_forms import form_input
from cim.quality.models import DuplicateCandidate
from cim.quality.services import duplicates_scan

pytestmark = pytest.mark.django_db
NAME, PHONE, AS_TYPED = "王小明", "+8613800138000", "138 0013 8000"


def by_page(admin_user, tmp_path, commit):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin_user)
    form = {"kind": "person", "display_name": NAME, "lifecycle_stage": "potential", "status": "active"}
    form |= {"phones-0-number": AS_TYPED, "phones-0-kind": "mobile", "phones-primary": "0", "keep_both": "1"}
    assert client.post(reverse("customers:create"), form).status_code == 302
    return "page"


def by_api(admin_user, tmp_path, commit):
    from cim.accounts.services import api_token_create

    _, token = api_token_create(user=admin_user, scope="write")
    body = {"display_name": NAME, "phones": [{"number": AS_TYPED}]}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post("/api/v1/customers", json.dumps(body), content_type="application/json").status_code == 201
    return "api"


def by_form(admin_user, tmp_path, commit):
    form = collection_form_create(data=form_input(slug="open", verify="none"), actor=admin_user)
    with commit(execute=True):
        data = {"display_name": NAME, "phone": AS_TYPED, "consent": "on"}
        Client().post(reverse("ingest:public_form", args=[form.slug]), data, REMOTE_ADDR="203.0.113.7")
    return "form:open"


def by_identify(admin_user, tmp_path, commit):
    _source, key = event_source_create(name="app", actor=admin_user)
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    body = {"userId": "u-9", "traits": {"name": NAME, "phone": AS_TYPED}}
    response = Client().post(
        "/ingest/v1/identify", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200
    # An identify takes the customer its phone already names, rather than making a duplicate to review.
    return None


def by_import(admin_user, tmp_path, commit, settings=None):
    path = tmp_path / "a.csv"
    path.write_text(f"姓名,手机\n{NAME},{AS_TYPED}\n", encoding="utf-8")
    job = import_job_create(path=path, filename="a.csv", actor=admin_user)
    assert import_run(job=job, actor=admin_user).created == 1
    return f"import:{job.pk}"


@pytest.mark.parametrize("enter", [by_page, by_api, by_form, by_identify, by_import])
def test_the_same_pair_is_flagged_on_every_entry_path(
    admin_user, tmp_path, settings, django_capture_on_commit_callbacks, enter
):
    settings.MEDIA_ROOT = tmp_path / "uploads"
    existing = make_customer(admin_user, display_name=NAME, phones=[{"number": PHONE}])
    path = enter(admin_user, tmp_path, django_capture_on_commit_callbacks)
    if path is None:
        assert list(Customer.objects.all()) == [existing] and existing.external_ids.get().value == "u-9"
        return
    new = Customer.objects.exclude(pk=existing.pk).get()
    pair = DuplicateCandidate.objects.get(customer=new, other=existing)
    assert pair.detected_by == path and pair.status == "open"
    DuplicateCandidate.objects.all().delete()
    assert duplicates_scan(actor=None).pairs == 1
    assert DuplicateCandidate.objects.get().other == existing
