import re
import uuid

from django.http import JsonResponse
from django.utils.translation import gettext as _

from cim.core.api_errors import error_body
from cim.core.context import set_request_id

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Tags each request with an id (the caller's X-Request-ID when well-formed) for the audit log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        set_request_id(request.request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
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
