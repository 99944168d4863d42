"""The export API: the same files as the export page, for scripts. Validates, then streams the service's output."""

from typing import Literal

from ninja import Query, Router

from cim.customers.filters import CustomerFilter
from cim.ingest.export import FORMATS, customers_export_stream
from cim.ingest.views import download_response, split_fields

router = Router(tags=["export"])

FILE_RESPONSES = {"200": {"description": "The file", "content": {media: {} for media in FORMATS.values()}}}


@router.get(
    "/customers/export",
    summary="Export customers as CSV, XLSX or JSON Lines",
    description="Takes the filters of `GET /customers`. Columns are machine names unless `headers=labels`; "
    "`fields` is a comma-separated list of column names (default: all). See docs/export.md.",
    openapi_extra={"responses": FILE_RESPONSES},
)
def export_customers(
    request,
    filters: Query[CustomerFilter],
    fmt: Literal["csv", "xlsx", "jsonl"] = Query("csv", alias="format"),
    fields: str = "",
    headers: Literal["names", "labels"] = "names",
):
    # The service checks the export right: PermissionDenied answers 403 `permission_denied`.
    export = customers_export_stream(
        user=request.auth, filters=filters, fmt=fmt, fields=split_fields([fields]), headers=headers
    )
    return download_response(export)
