"""Export pages: the customer list as a download. Views validate and call the export service (DESIGN §3.1)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header

from cim.accounts.roles import Perm
from cim.core.views import page
from cim.customers.views import parse_filters
from cim.ingest.export import CustomerExport, customers_export_stream

EXPORT_PARAMS = ("format", "fields", "headers")


def download_response(export: CustomerExport) -> StreamingHttpResponse:
    """The export streamed as an attachment (filename RFC 6266/5987-encoded); never cached: it is personal data."""
    response = StreamingHttpResponse(export.chunks(), content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.filename)
    response["Cache-Control"] = "no-store"
    return response


def split_fields(values: list[str]) -> list[str]:
    """Column names from `fields=a,b` and/or repeated `fields=a&fields=b`."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@page(perm=Perm.CUSTOMER_EXPORT)
def customers_export_view(request):
    """GET with the list page's query string plus `format`, `fields` and `headers`."""
    filters, _problems = parse_filters(request.GET)  # the list page showed the same problems, and ignored them too
    try:
        export = customers_export_stream(
            user=request.user,
            filters=filters,
            fmt=request.GET.get("format", "csv"),
            fields=split_fields(request.GET.getlist("fields")),
            headers=request.GET.get("headers", "names"),
        )
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        query = request.GET.copy()
        for name in EXPORT_PARAMS:
            query.pop(name, None)
        return redirect(f"{reverse('customers:list')}?{query.urlencode()}")
    return download_response(export)
