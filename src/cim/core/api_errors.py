"""Every API error is JSON: a stable `code`, a message in the caller's language and per-field `details`."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError, connection
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError
from redis.exceptions import RedisError

from cim.accounts.services import TokenRefused
from cim.core.api_auth import TokenScopeDenied
from cim.core.api_parser import UnstorableText
from cim.customers.selectors import InvalidNumber
from cim.customers.services import PermissionDenied, ReadOnlyShare

logger = logging.getLogger(__name__)

# Pydantic's messages are English only; these cover the error types callers meet.
_PYDANTIC_MESSAGES = {
    "missing": lambda e: _("This field is required."),
    "enum": lambda e: _("Select one of: %(choices)s.") % {"choices": e.get("ctx", {}).get("expected", "")},
    "literal_error": lambda e: _("Select one of: %(choices)s.") % {"choices": e.get("ctx", {}).get("expected", "")},
    "string_too_long": lambda e: _("Enter at most %(n)s characters.") % {"n": e.get("ctx", {}).get("max_length")},
    "too_long": lambda e: _("Enter at most %(n)s items.") % {"n": e.get("ctx", {}).get("max_length")},
    "string_type": lambda e: _("Enter text."),
    "int_parsing": lambda e: _("Enter a whole number."),
    "int_type": lambda e: _("Enter a whole number."),
    "greater_than_equal": lambda e: _("Enter a number of at least %(n)s.") % {"n": e.get("ctx", {}).get("ge")},
    "less_than_equal": lambda e: _("Enter a number of at most %(n)s.") % {"n": e.get("ctx", {}).get("le")},
    "bool_parsing": lambda e: _("Enter true or false."),
    "bool_type": lambda e: _("Enter true or false."),
    "date_from_datetime_parsing": lambda e: _("Enter a date as YYYY-MM-DD."),
    "date_parsing": lambda e: _("Enter a date as YYYY-MM-DD."),
    "date_type": lambda e: _("Enter a date as YYYY-MM-DD."),
    "list_type": lambda e: _("Enter a list."),
    "dict_type": lambda e: _("Enter an object."),
    "model_attributes_type": lambda e: _("Enter an object."),
    "json_invalid": lambda e: _("The request body is not valid JSON."),
    "extra_forbidden": lambda e: _("This field is not allowed."),
    "string_unstorable": lambda e: e["msg"],
}


RETRY_AFTER_SECONDS = "30"


def unavailable_message() -> str:
    return _("The job queue cannot be reached just now; nothing was done. Try again in a minute.")


def database_unavailable_message() -> str:
    return _("The database cannot be reached just now; nothing was done. Try again in a minute.")


def database_unavailable(exception: BaseException) -> bool:
    """Whether `exception` is the database being away for a moment rather than a mistake in a query. PostgreSQL
    raises OperationalError only for such passing conditions (a restart, a failover, a statement or lock timeout);
    SQLite raises it for mistakes too, so only its writer lock timing out counts there."""
    if not isinstance(exception, OperationalError | InterfaceError):
        return False
    return connection.vendor == "postgresql" or "database is locked" in str(exception)


def error_body(code: str, message: str, details: list[dict] | None = None) -> dict:
    return {"code": code, "message": message, "details": details or []}


def _pydantic_detail(error: dict) -> dict:
    # The first element of `loc` is where the value came from (body, query, path), not a field.
    loc = [str(p) for p in error.get("loc", ())]
    field = ".".join(loc[1:] if len(loc) > 1 and loc[0] in {"body", "query", "path", "form", "header"} else loc)
    for prefix in ("payload.", "data.", "filters."):
        field = field.removeprefix(prefix)
    message = _PYDANTIC_MESSAGES.get(error.get("type", ""))
    return {
        "field": field,
        "code": error.get("type", "invalid"),
        "message": message(error) if message else _("Enter a valid value."),
    }


def install_error_handlers(api: NinjaAPI) -> None:
    def respond(request, status, body):
        return api.create_response(request, body, status=status)

    @api.exception_handler(NinjaValidationError)
    def validation(request, exc):
        details = [_pydantic_detail(e) for e in exc.errors]
        return respond(request, 422, error_body("validation_error", _("Some values are not valid."), details))

    @api.exception_handler(DjangoValidationError)
    def service_validation(request, exc):
        details = [
            {"field": field, "code": "invalid", "message": str(message)}
            for field, messages in getattr(exc, "message_dict", {"": exc.messages}).items()
            for message in messages
        ]
        return respond(request, 422, error_body("validation_error", _("Some values are not valid."), details))

    @api.exception_handler(InvalidNumber)
    def invalid_number(request, exc):
        return respond(
            request,
            400,
            error_body(
                "invalid_customer_number", str(exc), [{"field": "number", "code": "invalid", "message": str(exc)}]
            ),
        )

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, error_body("not_found", str(exc) or _("Not found.")))

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request, exc):
        return respond(
            request, 401, error_body("not_authenticated", _("Send a valid API token: Authorization: Bearer <token>."))
        )

    @api.exception_handler(TokenRefused)
    def token_refused(request, exc):
        messages = {
            "token_expired": _("This API token has expired; create a new one."),
            "token_revoked": _("This API token has been revoked."),
        }
        return respond(request, 401, error_body(exc.code, messages[exc.code]))

    @api.exception_handler(TokenScopeDenied)
    def token_scope(request, exc):
        message = _("This API token is read-only; use a token with the write scope to change data.")
        return respond(request, 403, error_body("insufficient_scope", message))

    @api.exception_handler(ReadOnlyShare)
    def read_only(request, exc):
        message = _("This customer is shared with your team for reading only.")
        return respond(request, 403, error_body("read_only_share", message))

    @api.exception_handler(PermissionDenied)
    @api.exception_handler(AuthorizationError)
    def denied(request, exc):
        return respond(request, 403, error_body("permission_denied", _("Your role does not allow this.")))

    @api.exception_handler(Throttled)
    def throttled(request, exc):
        return respond(request, 429, error_body("throttled", _("Too many requests; try again later.")))

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        if isinstance(exc.__cause__, UnstorableText):
            return validation(request, exc.__cause__)
        if isinstance(exc.__cause__, ValueError | UnicodeDecodeError) and exc.status_code == 400:
            message = _("The request body must be a JSON object.")
            detail = {"field": "body", "code": "json_invalid", "message": message}
            return respond(request, 400, error_body("invalid_json", message, [detail]))
        code = {400: "bad_request", 405: "method_not_allowed", 409: "conflict"}.get(exc.status_code, "error")
        return respond(request, exc.status_code, error_body(code, str(exc)))

    @api.exception_handler(MultiPartParserError)
    def bad_multipart(request, exc):
        message = _("The request body must be multipart/form-data with a boundary.")
        detail = {"field": "body", "code": "multipart_invalid", "message": message}
        return respond(request, 400, error_body("invalid_multipart", message, [detail]))

    @api.exception_handler(RedisError)
    def queue_down(request, exc):
        response = respond(request, 503, error_body("unavailable", str(unavailable_message())))
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        if database_unavailable(exc):
            logger.warning("Database unavailable: %s", exc)
            response = respond(request, 503, error_body("unavailable", database_unavailable_message()))
            response["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        logger.exception("API error", exc_info=exc)
        return respond(
            request, 500, error_body("server_error", _("Something went wrong on our side; the error has been logged."))
        )


ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "Stable, for programs: validation_error, not_found, …"},
        "message": {"type": "string", "description": "For people, in the language of Accept-Language"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {"field": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# status → when it is answered; any operation may answer each of them.
DOCUMENTED_ERRORS = {
    "400": "The request cannot be read: a body that is not a JSON object, a malformed cursor or customer number",
    "401": "No valid API token",
    "403": "The token's role or scope does not allow this",
    "404": "Nothing of that id (in the path or the body), or outside the caller's records",
    "422": "A value is not valid; `details` names each field",
    "429": "Too many requests",
    "503": "The database or the job queue is away for a moment; see Retry-After",
}


def document_errors(schema: dict) -> dict:
    """The OpenAPI schema with the JSON errors each operation may answer, so clients generated from it know them."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            declared = {str(status) for status in responses}  # ninja's own keys are ints
            for status, description in DOCUMENTED_ERRORS.items():
                if status not in declared:
                    responses[status] = {"description": description, "content": content}
    return schema
