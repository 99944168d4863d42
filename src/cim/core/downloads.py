"""Small tables (reports) as CSV or XLSX downloads. Customer exports stream through `cim.ingest.export`."""

import csv
import io

import xlsxwriter
from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _text(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def table_download(name: str, header: list[str], rows: list[list], file_format: str) -> HttpResponse:
    """A header and rows as `name.csv` (UTF-8 with a BOM, for Excel) or `name.xlsx`; numbers stay numbers, and
    text that a spreadsheet would run as a formula is neutralised with a leading `'`."""
    if file_format == "xlsx":
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet()
        sheet.freeze_panes(1, 0)
        for line, values in enumerate([header, *rows]):
            for column, value in enumerate(values):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    sheet.write_number(line, column, value)
                else:
                    sheet.write_string(line, column, _text(value))
        workbook.close()
        content = buffer.getvalue()
    else:
        buffer = io.StringIO()
        buffer.write("\ufeff")
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows([[v if isinstance(v, int | float) else _text(v) for v in row] for row in rows])
        content = buffer.getvalue().encode()
    response = HttpResponse(content, content_type=CONTENT_TYPES[file_format])
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response
