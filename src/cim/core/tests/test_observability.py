"""Health, readiness, Prometheus metrics and structured logs, as an operator's tools see them."""

import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from cim.core import checks
from cim.core.logging import logging_config
from cim.core.models import WorkerHeartbeat
from cim.core.schedule import worker_heartbeat
from cim.customers.tests.factories import make_customer
from cim.segments.tasks import segments_refresh_all

REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_cache(settings):
    settings.CIM_REDIS_URL = REDIS
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS}}


def test_health_answers_without_login_and_says_nothing_more(db):
    response = Client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_not_ready_until_a_worker_has_beaten(db):
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "redis": "not configured",
        "worker": "silent",
    }
    worker_heartbeat()
    assert Client().get("/ready").status_code == 200


def test_a_worker_silent_for_minutes_no_longer_counts(db):
    worker_heartbeat(now=timezone.now() - timedelta(minutes=5))
    assert Client().get("/ready").json()["checks"]["worker"] == "silent"


def test_heartbeats_of_workers_gone_for_a_day_are_forgotten(db):
    WorkerHeartbeat.objects.create(worker="old-host:1", seen_at=timezone.now() - timedelta(days=2))
    worker_heartbeat()
    assert list(WorkerHeartbeat.objects.values_list("worker", flat=True)) != ["old-host:1"]
    assert not WorkerHeartbeat.objects.filter(worker="old-host:1").exists()


def test_ready_checks_the_real_redis(db, redis_cache):
    worker_heartbeat()
    response = Client().get("/ready")
    assert response.json()["checks"]["redis"] == "ok"
    assert response.status_code == 200


def test_ready_fails_when_redis_is_down(db, settings):
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CIM_REDIS_URL = dead
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}}
    worker_heartbeat()
    response = Client().get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "unreachable"


def test_metrics_need_the_token_or_an_administrator(users, settings):
    assert Client().get("/metrics").status_code == 401
    assert Client(headers={"Authorization": "Bearer wrong"}).get("/metrics").status_code == 401
    assert Client(headers={"Authorization": f"Bearer {settings.CIM_METRICS_TOKEN}"}).get("/metrics").status_code == 200
    sales, admin = Client(), Client()
    sales.force_login(users["sales"])
    admin.force_login(users["administrator"])
    assert sales.get("/metrics").status_code == 401
    assert admin.get("/metrics").status_code == 200


def _scrape(settings) -> str:
    response = Client(headers={"Authorization": f"Bearer {settings.CIM_METRICS_TOKEN}"}).get("/metrics")
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_count_requests_by_route_with_latency(admin_user, settings):
    client = Client()
    client.force_login(admin_user)
    client.get("/")
    text = _scrape(settings)
    assert 'django_http_requests_latency_seconds_by_view_method_count{method="GET",view="customers:list"}' in text
    assert "django_http_responses_total_by_status_total" in text


TASK = "cim.segments.tasks.segments_refresh_all"


def _runs(text: str) -> float:
    sample = f'cim_task_duration_seconds_count{{status="successful",task="{TASK}"}} '
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(sample)), 0.0)


@pytest.mark.django_db(transaction=True)  # the worker closes its database connection when it stops
def test_metrics_show_queue_depth_and_jobs_run_per_task(admin_user, settings):
    make_customer(admin_user)
    before = _runs(_scrape(settings))
    segments_refresh_all.enqueue()
    segments_refresh_all.enqueue()
    assert 'cim_task_queue_depth{queue="default"} 2.0' in _scrape(settings)
    call_command("worker", batch=True, no_periodic=True, verbosity=0)
    text = _scrape(settings)
    assert _runs(text) == before + 2
    assert 'cim_task_queue_depth{queue="default"}' not in text


@pytest.fixture
def rq_backend(settings, redis_cache):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_rq"]
    settings.RQ_QUEUES = {"default": {"URL": REDIS}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_jobs_queued_on_redis(admin_user, settings, rq_backend):
    customer = make_customer(admin_user)
    before = _runs(_scrape(settings))
    result = segments_refresh_all.enqueue()
    assert rq_backend.count == 1
    assert 'cim_task_queue_depth{queue="default"} 1.0' in _scrape(settings)
    call_command("worker", batch=True, no_periodic=True, verbosity=0)
    assert rq_backend.count == 0
    assert segments_refresh_all.get_result(result.id).status == "SUCCESSFUL"
    assert _runs(_scrape(settings)) == before + 1
    assert customer.pk


def _log_lines(logger_name: str, action) -> list[dict]:
    config = logging_config(level="INFO", json=True)["formatters"]["structured"]
    factory = config.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(factory(**config))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        action()
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_request_logs_one_json_line_with_request_and_actor_ids_and_no_query(admin_user):
    client = Client()
    client.force_login(admin_user)
    lines = _log_lines("cim.request", lambda: client.get("/?q=13812345678", HTTP_X_REQUEST_ID="req-12345678"))
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-12345678"
    assert line["actor_id"] == admin_user.pk
    assert (line["route"], line["method"], line["status"]) == ("customers:list", "GET", 200)
    assert "13812345678" not in json.dumps(line)


def test_personal_values_are_cut_from_messages_and_tracebacks():
    def log():
        try:
            raise ValueError("duplicate key (address)=(zhang.wei@example.cn) phone +8613812345678")
        except ValueError:
            logging.getLogger("cim.test").exception("import row failed for 110101199003074514")

    lines = _log_lines("cim.test", log)
    text = json.dumps(lines, ensure_ascii=False)
    for value in ("zhang.wei@example.cn", "8613812345678", "110101199003074514"):
        assert value not in text
    assert "[redacted]" in lines[0]["event"] and "[redacted]" in lines[0]["exception"]


def test_check_deploy_names_pending_migrations_and_workers_on_other_code(db, monkeypatch):
    worker_heartbeat()
    assert [p.id for p in checks.upgrade_checks(None)] == []
    WorkerHeartbeat.objects.update(version="0.0.9+deadbeef")
    monkeypatch.setattr(checks, "pending_migrations", lambda: ["customers.0099_next"])
    assert [p.id for p in checks.upgrade_checks(None)] == ["cim.W102", "cim.W104"]


def test_every_metric_of_the_grafana_dashboard_is_exported(admin_user, settings):
    client = Client()
    client.force_login(admin_user)
    client.get("/")
    text = _scrape(settings)
    exported = {re.sub(r"_total$", "", line.split()[2]) for line in text.splitlines() if line.startswith("# HELP ")}
    if connection.vendor == "sqlite":
        exported.add("cim_db_connections")  # PostgreSQL's connections: there are none to count on SQLite
    dashboard = json.loads((Path(settings.BASE_DIR) / "docs" / "grafana-dashboard.json").read_text())
    used = {
        re.sub(r"_(total|bucket|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:django|cim)_[a-z_]+", target["expr"])
    }
    assert used and used <= exported
