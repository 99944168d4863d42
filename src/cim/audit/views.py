"""The audit page: the log with filters, keyset paging, an export, and a button that verifies the chain."""

import tempfile

from django.http import FileResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from ninja.errors import HttpError
from pydantic import ValidationError as PydanticValidationError

from cim.accounts.roles import Perm
from cim.audit.filters import AuditFilter
from cim.audit.reports import EXPORT_FORMATS, audit_export, audit_verify
from cim.audit.selectors import audit_event_list
from cim.core.api_errors import _pydantic_detail
from cim.core.downloads import CONTENT_TYPES
from cim.core.pagination import keyset_page
from cim.core.views import page

PER_PAGE = 50
# Families of actions offered as suggestions in the filter (a prefix ending in "." matches the family).
ACTION_SUGGESTIONS = ("auth.", "auth.login", "auth.login_failed", "auth.logout", "access.denied", "admin.", "audit.")


def _filters(params) -> tuple[AuditFilter, list[str]]:
    """The filters from the query string: invalid values are dropped and described, never a 500."""
    data = {name: value.strip() for name in AuditFilter.model_fields if (value := params.get(name, "")).strip()}
    try:
        return AuditFilter.model_validate(data), []
    except PydanticValidationError as error:
        problems, bad = [], set()
        for detail in error.errors():
            name = str(detail["loc"][0]) if detail.get("loc") else ""
            bad.add(name)
            problems.append(
                _("Ignored the filter “%(field)s”: %(message)s")
                % {"field": name, "message": _pydantic_detail(detail)["message"]}
            )
        return AuditFilter.model_validate({k: v for k, v in data.items() if k not in bad}), problems


@page(perm=Perm.AUDIT_VIEW)
def audit_list_view(request):
    filters, problems = _filters(request.GET)
    export = request.GET.get("export")
    if export in EXPORT_FORMATS:
        return _download(request, filters, export)
    try:
        events, next_cursor = keyset_page(
            audit_event_list(filters=filters), cursor=request.GET.get("cursor") or None, limit=PER_PAGE
        )
    except HttpError:
        problems.append(_("The page link is not valid any more; showing the newest events."))
        events, next_cursor = keyset_page(audit_event_list(filters=filters), cursor=None, limit=PER_PAGE)
    context = {
        "nav": "audit",
        "filters": filters,
        "filter_errors": problems,
        "events": events,
        "next_cursor": next_cursor,
        "first_page": bool(request.GET.get("cursor")),
        "action_suggestions": ACTION_SUGGESTIONS,
    }
    template = "audit/_results.html" if request.htmx and request.htmx.target == "audit-results" else "audit/list.html"
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


def _download(request, filters: AuditFilter, fmt: str) -> FileResponse:
    # Written to a temporary file first (flat memory for any size), then streamed.
    out = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it once sent)
    audit_export(actor=request.user, filters=filters, fmt=fmt, out=out)
    out.seek(0)
    name = f"audit-{timezone.localtime():%Y%m%d-%H%M%S}.{fmt}"
    return FileResponse(out, as_attachment=True, filename=name, content_type=CONTENT_TYPES[fmt])


@require_POST
@page(perm=Perm.AUDIT_VIEW)
def audit_verify_view(request):
    result = audit_verify(actor=request.user)
    return render(request, "audit/_verification.html", {"result": result})
