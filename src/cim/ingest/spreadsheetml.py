"""Excel 2003 XML (SpreadsheetML): the "Excel" file older .NET and Java back-ends, banks' and government
systems still export, often named .xls. One XML document of worksheets, read as a stream with defusedxml (entities,
and so "billion laughs", are refused), once for the sheets' names and again for the rows of the sheet read."""

import codecs
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from defusedxml.ElementTree import iterparse

from cim.ingest.recoded import Utf8Reader

NAMESPACE = "urn:schemas-microsoft-com:office:spreadsheet"
_SS = "{" + NAMESPACE + "}"
_X = "{urn:schemas-microsoft-com:office:excel}"
MAX_ROWS = 1_048_576  # Excel's own limits
MAX_COLUMNS = 16_384
_HIDDEN = {"SheetHidden", "SheetVeryHidden"}
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}
# GB2312 is what Chinese systems declare; what they write is often GBK, of which GB18030 is a superset.
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "gb_2312-80": "gb18030", "x-gbk": "gb18030"}


@contextmanager
def _opened(path: Path):
    with path.open("rb") as handle:
        match = _DECLARED_ENCODING.match(handle.read(512).removeprefix(codecs.BOM_UTF8))
        handle.seek(0)
        declared = match[1].decode().lower() if match else "utf-8"
        if declared in _EXPAT_ENCODINGS:
            yield handle
        else:  # expat reads only UTF-8, UTF-16 and Latin-1; Chinese systems declare GB2312 or GBK
            yield Utf8Reader(handle, _WIDER.get(declared, declared), first=_declared_utf8)


def _declared_utf8(text: str) -> str:
    return re.sub(r"""encoding\s*=\s*["'][^"']*["']""", 'encoding="utf-8"', text, count=1)


def sheets(path: Path) -> tuple[list[str], list[str]]:
    """(every sheet's name, the visible ones'), in the workbook's order."""
    names: list[str] = []
    hidden: set[str] = set()
    table = None
    with _opened(path) as source:
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start" and element.tag == f"{_SS}Worksheet":
                names.append(element.get(f"{_SS}Name", ""))
            elif event == "start" and element.tag == f"{_SS}Table":
                table = element
            elif event == "end" and element.tag == f"{_SS}Row" and table is not None:
                table.clear()
            elif event == "end" and element.tag == f"{_X}Visible" and (element.text or "").strip() in _HIDDEN:
                hidden.add(names[-1])
    return names, [name for name in names if name not in hidden]


def records(path: Path, sheet: str) -> Iterator[tuple[list, dict[int, int]]]:
    """The rows of `sheet`, each as its values (text, numbers, datetimes) and the merges over several rows that
    start in it (column index → last row). A row the file leaves out (`ss:Index` jumping ahead) comes as an empty
    one, so that row numbers stay the sheet's."""
    in_sheet = False
    table = None
    next_row = 1
    with _opened(path) as source:
        for event, element in iterparse(source, events=("start", "end")):
            if element.tag == f"{_SS}Worksheet":
                if event == "start":
                    in_sheet = element.get(f"{_SS}Name", "") == sheet
                elif in_sheet:
                    return
            elif not in_sheet:
                continue
            elif element.tag == f"{_SS}Table" and event == "start":
                table = element
            elif element.tag == f"{_SS}Row" and event == "end":
                number = _index(element, MAX_ROWS) or next_row
                while next_row < number:
                    yield [], {}
                    next_row += 1
                yield _row_values(element, number)
                next_row = number + 1
                if table is not None:
                    table.clear()  # the rows read so far: memory stays flat however long the sheet


def _index(element, limit: int) -> int:
    """The 1-based position an element says it is at (0 if it does not say), up to Excel's own `limit`: a hostile
    file would otherwise make a billion empty rows or cells."""
    text = element.get(f"{_SS}Index", "")
    if not text.isdigit():
        return 0
    if int(text) > limit:
        raise ValueError(f"ss:Index beyond {limit}")
    return int(text)


def _row_values(row, number: int) -> tuple[list, dict[int, int]]:
    values: list = []
    merges: dict[int, int] = {}
    for cell in row.findall(f"{_SS}Cell"):
        column = _index(cell, MAX_COLUMNS) or len(values) + 1
        values.extend([None] * (column - 1 - len(values)))
        data = cell.find(f"{_SS}Data")
        values.append(_value(data) if data is not None else None)
        values.extend([None] * _merge(cell, "MergeAcross"))
        if len(values) > MAX_COLUMNS:
            raise ValueError(f"a row beyond {MAX_COLUMNS} columns")
        if down := _merge(cell, "MergeDown"):
            merges[column - 1] = number + down
    return values, merges


def _merge(cell, direction: str) -> int:
    text = cell.get(f"{_SS}{direction}", "")
    return min(int(text), MAX_ROWS) if text.isdigit() else 0


def _value(data) -> object:
    text = "".join(data.itertext())  # rich text holds its runs in <html:Font> children
    kind = data.get(f"{_SS}Type", "String")
    if kind == "Number":
        try:
            return int(text) if text.strip().isdigit() else float(text)
        except ValueError:
            return text
    if kind == "DateTime":
        try:
            return datetime.fromisoformat(text.strip())
        except ValueError:
            return text
    if kind == "Boolean":
        return text.strip() == "1"
    return text
