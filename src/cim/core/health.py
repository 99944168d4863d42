"""`/health` (is the process alive) and `/ready` (can it do its work): for load balancers, systemd and monitors.

Neither needs a login and neither says more than which check failed: no versions, paths or data.
"""

from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from redis.exceptions import RedisError

from cim.core.models import WorkerHeartbeat
from cim.core.version import pending_migrations

# A worker beats every `cim.core.schedule.HEARTBEAT_SECONDS`; four missed beats and it counts as gone.
WORKER_SILENCE = timedelta(minutes=2)


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database(), "migrations": _migrations(), "redis": _redis(), "worker": _worker()}
    ok = all(result in ("ok", "not configured") for result in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "unreachable"
    return "ok"


def _migrations() -> str:
    try:
        return "pending" if pending_migrations() else "ok"
    except DatabaseError:
        return "unknown"


def _redis() -> str:
    if not settings.CIM_REDIS_URL:
        return "not configured"
    try:
        redis.Redis.from_url(settings.CIM_REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except RedisError:
        return "unreachable"
    return "ok"


def _worker() -> str:
    try:
        alive = WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - WORKER_SILENCE).exists()
    except DatabaseError:
        return "unknown"
    return "ok" if alive else "silent"
