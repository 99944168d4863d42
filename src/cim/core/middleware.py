import re
import time
import uuid

import structlog
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from cim.core.api_errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable,
    database_unavailable_message,
    error_body,
    unavailable_message,
)
from cim.core.context import request_memo, set_request_id

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Tags each request with an id (the caller's X-Request-ID when well-formed) for the audit log, and gives a
    request that writes nothing a memo of the reads its parts share (cim.core.context.memoized)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        set_request_id(request.request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request.request_id)
        if request.method in ("GET", "HEAD"):
            with request_memo():
                response = self.get_response(request)
        else:
            response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


access_log = structlog.get_logger("cim.request")


class AccessLogMiddleware:
    """Binds the signed-in user's id to the request's log lines and writes one access line per request: the route's
    name rather than the path, and never the query string, which can hold a searched phone number."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            structlog.contextvars.bind_contextvars(actor_id=user.pk)
        response = self.get_response(request)
        match = request.resolver_match
        access_log.info(
            "request",
            method=request.method,
            route=match.view_name if match else "",
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response


class ApiJsonErrorsMiddleware:
    """Errors Django or ninja answer before our handlers run (unknown path, wrong method) are JSON under /api/ too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code in (404, 405)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 404:
                body = error_body("not_found", _("There is no such API endpoint."))
            else:
                body = error_body("method_not_allowed", _("This method is not allowed here."))
            allow = response.get("Allow")
            response = JsonResponse(body, status=response.status_code, json_dumps_params={"ensure_ascii": False})
            if allow:
                response["Allow"] = allow
        return response


class UnavailableMiddleware:
    """Work that needs the Redis job queue while Redis is down, or the database while it restarts, is refused with
    503 and Retry-After, not a 500: the request's transaction is rolled back, so nothing half-done stays, and the
    client or person tries again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RedisError):
            message = unavailable_message()
        elif database_unavailable(exception):
            access_log.warning("database unavailable", error=str(exception))
            message = database_unavailable_message()
        else:
            return None
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
