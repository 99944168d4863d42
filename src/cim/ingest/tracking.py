"""The Segment / RudderStack HTTP tracking API under /ingest/v1/: existing SDKs send here by changing their host.

Authenticated by a source's write key (the basic-auth user, or `writeKey` in the body). Limits are Segment's:
32 KB per event, 500 KB per request. A request is stored whole or not at all: any invalid event makes the
answer a 400 listing every problem, and a 200 is sent only once the events are committed.
"""

import base64
import binascii
import json
import logging
import zlib

from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError as PydanticValidationError

from cim.activities.schemas import TrackingMessage, message_errors
from cim.activities.services import events_ingest
from cim.core.api_errors import _pydantic_detail, error_body
from cim.ingest.models import EventSource
from cim.ingest.sources import event_source_for_key

logger = logging.getLogger(__name__)

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias", "batch")
# URL path → message type. analytics.js posts each call to the first letter of its type (/t, /p, /i…)
# and its batches to /b; the other SDKs use the full names.
ENDPOINTS = {**{kind: kind for kind in MESSAGE_TYPES}, **{kind[0]: kind for kind in MESSAGE_TYPES}}
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# Browsers (analytics.js, RudderStack's JavaScript SDK) post from the customer's own web site.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, AnonymousId",
    "Access-Control-Max-Age": "86400",
}


class TrackingError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> JsonResponse:
        response = _json(error_body(self.code, self.message, self.details), status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Basic realm="CIM tracking API"'
        return response


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    for header, value in CORS_HEADERS.items():
        response[header] = value
    return response


@csrf_exempt
def tracking_view(request, message_type: str):
    """identify, track, page, screen, group, alias: one message; batch: `{"batch": [...]}`."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        for header, value in CORS_HEADERS.items():
            response[header] = value
        return response
    try:
        if request.method != "POST":
            raise TrackingError(405, "method_not_allowed", _("Send events with POST."))
        source = _source_from_header(request)
        payload = _payload(request, MAX_BATCH_BYTES if message_type == "batch" else MAX_EVENT_BYTES)
        if source is None:
            source = _source_from_body(payload)
        messages = _messages(payload, message_type)
        _ingest(source, messages)
    except TrackingError as error:
        return error.response()
    except (OperationalError, IntegrityError):
        # Locked or racing (see _ingest): nothing was stored; SDKs send a 5xx again later.
        logger.exception("tracking API: database unavailable")
        response = _json(error_body("unavailable", _("The service is busy; send the events again.")), status=503)
        response["Retry-After"] = "5"
        return response
    except Exception:
        logger.exception("tracking API error")
        message = _("Something went wrong on our side; the error has been logged.")
        return _json(error_body("server_error", message), status=500)
    return _json({"success": True})


@csrf_exempt
def tracking_not_found_view(request, rest: str):
    return _json(error_body("not_found", _("There is no such tracking endpoint.")), status=404)


def _source_from_header(request) -> EventSource | None:
    """The source of a basic-auth header (write key as user, empty password); None when there is no such header."""
    scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        write_key = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        write_key = ""
    return _source(write_key)


def _source_from_body(payload: dict) -> EventSource:
    write_key = payload.get("writeKey")
    if not isinstance(write_key, str) or not write_key:
        raise TrackingError(
            401, "missing_write_key", _("Send the source's write key as the basic-auth user name, or as writeKey.")
        )
    return _source(write_key)


def _source(write_key: str) -> EventSource:
    source = event_source_for_key(write_key)
    if source is None:
        raise TrackingError(401, "invalid_write_key", _("This write key is not valid, or its source is turned off."))
    return source


def _too_large(limit: int) -> TrackingError:
    return TrackingError(400, "too_large", _("The request is larger than %(n)s KB.") % {"n": limit // 1024})


def _payload(request, limit: int) -> dict:
    """The JSON object of the body, gunzipped when sent so, at most `limit` bytes either way."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large(limit) from None
    if len(body) > limit:
        raise _too_large(limit)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        # Bounded, so a small body that inflates to gigabytes is refused after `limit` bytes.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            body, inflater = b"", None
        if len(body) > limit:
            raise _too_large(limit)
        if inflater is None or not inflater.eof:
            raise TrackingError(400, "invalid_gzip", _("The body is not valid gzip."))
    elif encoding not in ("", "identity"):
        raise TrackingError(400, "unsupported_encoding", _("Send the body as JSON, or gzip-compressed JSON."))
    try:
        payload = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        message = _("The request body must be a JSON object.")
        raise TrackingError(
            400, "invalid_json", message, [{"field": "body", "code": "json_invalid", "message": message}]
        )
    return payload


def _no_constant(name: str):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(name)


def _messages(payload: dict, message_type: str) -> list[TrackingMessage]:
    """The request's messages, validated; raises a 400 naming every problem of every event."""
    if message_type == "batch":
        raw = payload.get("batch")
        if not isinstance(raw, list):
            detail = {"field": "batch", "code": "list_type", "message": _("Enter a list.")}
            raise TrackingError(400, "validation_error", _("Some events are not valid; none was stored."), [detail])
        shared = payload.get("context")
        shared_context = shared if isinstance(shared, dict) else {}
    else:
        raw, shared_context = [{**payload, "type": message_type}], {}
    messages, details = [], []
    for i, item in enumerate(raw):
        prefix = f"batch.{i}." if message_type == "batch" else ""
        problems = _event_problems(item)
        if not problems:
            if shared_context and isinstance(item.get("context") or {}, dict):
                item = {**item, "context": {**shared_context, **(item.get("context") or {})}}
            try:
                message = TrackingMessage.model_validate(item)
            except PydanticValidationError as error:
                problems = [_pydantic_detail(e) for e in error.errors()]
            else:
                problems = message_errors(message)
                messages.append(message)
        details += [{**p, "field": f"{prefix}{p['field']}".rstrip(".")} for p in problems]
    if details:
        raise TrackingError(400, "validation_error", _("Some events are not valid; none was stored."), details)
    return messages


def _event_problems(item) -> list[dict]:
    """Problems no schema sees: the event's size, and text a database cannot store (NUL, lone surrogates)."""
    if not isinstance(item, dict):
        return [{"field": "", "code": "dict_type", "message": _("Enter an object.")}]
    try:
        encoded = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        encoded = None
    if encoded is None or (b"\\u0000" in encoded and _has_nul(item)):
        return [
            {"field": "", "code": "invalid_text", "message": _("Text must be valid Unicode without NUL characters.")}
        ]
    if len(encoded) > MAX_EVENT_BYTES:
        message = _("An event may be at most %(n)s KB.") % {"n": MAX_EVENT_BYTES // 1024}
        return [{"field": "", "code": "too_large", "message": message}]
    return []


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _ingest(source: EventSource, messages: list[TrackingMessage]) -> None:
    try:
        events_ingest(source=source, messages=messages)
    except IntegrityError:
        # Another request linked the same new userId or anonymousId at the same moment (PostgreSQL):
        # this transaction was rolled back whole; once more sees that request's rows.
        events_ingest(source=source, messages=messages)
