"""Redis down (nothing listens on its port): pages, public forms and event ingestion keep working on the database;
work that needs the Redis job queue is refused with 503 and Retry-After, and leaves nothing half-done."""

import base64
import json

import pytest
from django.test import Client

from cim.activities.models import BehaviourEvent
from cim.customers.tests.factories import make_customer
from cim.ingest.models import ImportJob
from cim.ingest.services import import_job_create
from cim.ingest.sources import event_source_create

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def redis_down(settings):
    settings.CIM_REDIS_URL = DOWN
    settings.CACHES = {"default": {"BACKEND": "cim.core.cache.ResilientRedisCache", "LOCATION": DOWN}}
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_rq"]
    settings.RQ_QUEUES = {"default": {"URL": DOWN}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}


def test_pages_work_on_cache_misses(admin_user, redis_down):
    customer = make_customer(admin_user, display_name="缓存测试")
    client = Client()
    client.force_login(admin_user)
    assert client.get("/").status_code == 200
    assert client.get(f"/customers/{customer.number}/").status_code == 200


def test_events_are_still_accepted_into_the_database(db, redis_down):
    _, key = event_source_create(name="官网", source_channel="website", actor=None)
    response = Client().post(
        "/ingest/v1/track",
        data=json.dumps({"userId": "u-1", "event": "Signed Up", "messageId": "m-1"}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    )
    assert response.status_code == 200
    assert BehaviourEvent.objects.filter(name="Signed Up").count() == 1


def test_starting_an_import_needs_the_queue_and_says_when_to_retry(admin_user, redis_down, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    upload = tmp_path / "c.csv"
    upload.write_text("姓名\n张三\n", encoding="utf-8")
    job = import_job_create(path=upload, filename="c.csv", actor=admin_user)
    client = Client()
    client.force_login(admin_user)
    response = client.post(f"/imports/{job.pk}/start/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED  # not stuck as queued: it can be started again


def test_the_api_answers_503_in_json(admin_user, redis_down, api_client):
    response = api_client(admin_user).post("/api/v1/duplicates/scan", content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["code"] == "unavailable"
