from cim.audit.access import access_denied_record


class AccessDeniedAuditMiddleware:
    """Records every 403, whether a page raised PermissionDenied, the API refused a role or CSRF failed: one
    place, so no view can forget it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            access_denied_record(request=request)
        return response
