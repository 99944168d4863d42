"""Reading import files as rows of text: which format and encoding a file is, and the readers of CSV/TSV in the
encodings Excel writes, XLSX, XLS, Excel 2003 XML (`spreadsheetml`) and web page tables; JSON (`json_records`)
and vCard (`vcard`) have their own modules.

Every reader streams (a million rows never sit in memory) and turns what it cannot read into a `FileProblem`
(the whole file) or a `RowProblem` (one row), each with a translated message, never an exception from a parser.
"""

import codecs
import csv
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import charset_normalizer
import xlrd
from defusedxml import EntitiesForbidden
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.ingest import spreadsheetml
from cim.ingest.json_records import json_table, jsonl_table
from cim.ingest.table import FileProblem, RowProblem, Table, text_lines
from cim.ingest.vcard import vcard_table

MAX_FILE_BYTES = 2 * 1024**3
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell
MAX_COLUMNS = 500
# XLSX is a zip of XML: refuse archives that unpack to far more than they weigh (zip bombs).
MAX_ZIP_ENTRIES = 10_000
MAX_UNZIPPED_BYTES = 4 * 1024**3
MAX_ZIP_RATIO = 200
SAMPLE_BYTES = 1024**2
# Exports often open with a title, the export time or who made it above the real header: looked for this far.
HEADER_SEARCH_ROWS = 20
# Characters ordinary Chinese text hardly holds, and GB18030 makes of Big5 bytes: Latin-1 letters, Greek, Cyrillic,
# kana, rare (extension A) characters, vertical forms, private use.
_ODD_IN_CHINESE = re.compile(
    r"[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u04ff\u3040-\u30ff\u3400-\u4dbf\ue000-\uf8ff\ufe10-\ufe4f]"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_IN_LATIN_WORD = re.compile(r"[A-Za-z][\u4e00-\u9fff][a-z]")
# A merge in an XLSX sheet's XML: <mergeCell ref="A2:A4"/>.
_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]{1,3})(\d{1,7}):([A-Z]{1,3})(\d{1,7})"')
# The text encodings a person may choose when the one found is wrong: Python's codec → what people call it.
TEXT_ENCODINGS = {
    "utf-8-sig": "UTF-8",
    "gb18030": "GB18030 / GBK / GB2312",
    "big5hkscs": "Big5 / Big5-HKSCS",
    "utf-16": "UTF-16",
    "cp1252": gettext_lazy("Windows-1252 (Western European)"),
}

OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97–2003 (.xls), and any password-protected workbook
_HTML_SPACE = re.compile(r"\s+")
# Taobao, Alipay, WeChat Pay and JD write long numbers into CSV as ="2087…", a formula Excel shows as the text.
_TEXT_FORMULA = re.compile(r'\s*="(.*)"\s*', re.DOTALL)
# The line a sheet ends with, summing the rows above it: its first cell says so ("合计", "合计：2 人", "Total:").
_TOTAL_ROW = re.compile(
    r"\s*((合|总|小|共|总合)\s*计([:：\s\d].*)?|(grand\s*|sub)?total\s*:?[\s\d.,]*)", re.IGNORECASE | re.DOTALL
)


def detect_format(filename: str, head: bytes) -> str:
    name = filename.lower()
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(OLE2_SIGNATURE):
        return "xls"
    if name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if name.endswith((".vcf", ".vcard")) or head.lstrip(b"\xef\xbb\xbf \r\n").upper().startswith(b"BEGIN:VCARD"):
        return "vcf"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Windows' "Unicode", PowerShell's default
        text_head = head[:4096].decode("utf-16", errors="replace").lstrip(" \t\r\n").encode()
    else:
        text_head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text_head.startswith(b"[") or (text_head.startswith(b"{") and not _json_object_line(text_head)):
        return "json"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if text_head.startswith(b"<") and spreadsheetml.NAMESPACE.encode() in head:
        return "xml2003"
    # Web back-ends export an HTML table named .xls (Excel opens it); others a tab-separated text so named.
    if text_head.startswith(b"<") and b"<table" in head.lower():
        return "html"
    return "csv"


def _json_object_line(text: bytes) -> bool:
    """Whether the file starts as JSON Lines: its first line a whole object, and either more lines follow or that
    object holds no array of objects (an API's {"data": [...]} saved on one line is a JSON document)."""
    first, _newline, rest = text.partition(b"\n")
    try:
        value = json.loads(first)
    except (ValueError, RecursionError):
        return False
    if not isinstance(value, dict):
        return False
    holds_records = any(isinstance(v, list) and v and isinstance(v[0], dict) for v in value.values())
    return bool(rest.strip()) or not holds_records


def detect_encoding(sample: bytes) -> str:
    """The text encoding of a file from its first megabyte: BOMs first, then UTF-8, then GB18030 (what Excel
    writes for Chinese on Windows), then whatever charset-normalizer finds most plausible.

    UTF-8 or GB18030 is taken even with a few bytes it cannot decode (a damaged export): the rows holding them are
    reported one by one, where another guess would garble every Chinese character of the file."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if sample.startswith(bom):
            return encoding
    # The sample may end inside a character: an incremental decoder without `final` allows that.
    decoded = {
        encoding: codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
        for encoding in ("utf-8", "gb18030")
    }
    if "\ufffd" not in decoded["utf-8"]:
        return "utf-8"
    if "\ufffd" not in decoded["gb18030"]:
        return _gb18030_big5_or_western(sample, decoded["gb18030"])
    for encoding, text in decoded.items():
        damaged = text.count("\ufffd")
        non_ascii = len(text) - len(text.encode("ascii", "ignore"))
        # A damaged export: a few bytes fail where far more characters of the encoding decode.
        if damaged <= max(10, len(sample) // 2000) and non_ascii - damaged >= 20 * damaged:
            return encoding
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        raise FileProblem(_("The file's text encoding was not recognised: save it as UTF-8 CSV."))
    # A few accents read alike in many code pages; of those, Windows-1252 is what Excel writes in the West.
    if any(match.chaos <= best.chaos and "cp1252" in match.could_be_from_charset for match in matches):
        return "cp1252"
    return best.encoding


def encoding_label(encoding: str) -> str:
    """What people call an encoding Python names: utf-8 → UTF-8, gb18030 → GB18030 / GBK / GB2312."""
    return str(TEXT_ENCODINGS.get(encoding) or TEXT_ENCODINGS.get(f"{encoding}-sig") or encoding.upper())


def _gb18030_big5_or_western(sample: bytes, as_gb18030: str) -> str:
    """GB18030 decodes nearly any bytes without an error, and so reads other encodings as nonsense: Big5 (Hong
    Kong, Taiwan) as kana, Latin-1 letters and rare characters (陳大文 as 朝ゅ), a Western single-byte file as
    characters inside Latin words (Jürgen Müller as J黵gen M黮ler). A sample that reads as ordinary text in
    Big5-HKSCS, and not in GB18030, is Big5; one whose Chinese characters mostly sit inside Latin words is
    Windows-1252, what Excel writes on a Western Windows (charset-normalizer guesses wildly on a few accents)."""
    chinese = len(_CJK.findall(as_gb18030))
    if chinese and 2 * len(_CJK_IN_LATIN_WORD.findall(as_gb18030)) > chinese:
        return "cp1252"
    odd = len(_ODD_IN_CHINESE.findall(as_gb18030))
    if odd < 2:
        return "gb18030"
    as_big5 = codecs.getincrementaldecoder("big5hkscs")(errors="replace").decode(sample)
    if "\ufffd" in as_big5 or 2 * len(_ODD_IN_CHINESE.findall(as_big5)) >= odd:
        return "gb18030"
    return "big5hkscs"


def open_table(path: Path, filename: str, sheet: str = "", encoding: str = "") -> Table:
    """The rows of the file at `path`; `filename` is the name the user gave it (its extension decides little).
    In a workbook, the rows of `sheet`, or of the first visible sheet with a header. A text file is read in
    `encoding` (one of `TEXT_ENCODINGS`, or one found before), or else in the one its first megabyte shows."""
    size = path.stat().st_size
    if size == 0:
        raise FileProblem(_("The file is empty."))
    if size > MAX_FILE_BYTES:
        raise FileProblem(_("The file is larger than %(n)s GB.") % {"n": MAX_FILE_BYTES // 1024**3})
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    file_format = detect_format(filename, head)
    if file_format == "xlsx":
        return _xlsx(path, sheet)
    if file_format == "xls":
        return _xls(path, sheet)
    if file_format == "xml2003":
        return _xml2003(path, sheet)
    encoding = encoding or detect_encoding(head)
    if encoding == "utf-16" and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16-le"  # chosen for a file without a byte order mark: Windows writes little-endian
    if file_format == "json":
        return json_table(path, encoding)
    if file_format == "html":
        return _html(path, encoding)
    if file_format == "vcf":
        return vcard_table(path, encoding)
    if file_format == "jsonl":
        return jsonl_table(path, encoding)
    return _csv(path, encoding, head)


def _cell_too_long() -> RowProblem:
    return RowProblem(_("A cell has more than %(n)s characters.") % {"n": MAX_CELL_CHARS})


def _cell(value: str) -> str | RowProblem:
    return _cell_too_long() if len(value) > MAX_CELL_CHARS else value


def _formula_text(cell: str) -> str:
    match = _TEXT_FORMULA.fullmatch(cell)
    return match[1].replace('""', '"') if match else cell


def _total_row(cells: list[str]) -> RowProblem | None:
    first = next((cell for cell in cells if cell and not cell.isspace()), "")
    if _TOTAL_ROW.fullmatch(first):
        return RowProblem(_("This is a total row (“%(word)s”), not a record.") % {"word": first.strip()})
    return None


def _filled(cells: list | None) -> int:
    return sum(1 for cell in cells if cell is not None and str(cell).strip()) if cells else 0


def _header(records: Iterator[list | None]) -> tuple[int, list, Iterator[list | None]]:
    """(the header's row number, its cells, the rows after it). Shops and CRMs export sheets that open with a title
    ("客户信息表"), the export time or who made it: a row of a cell or two above the real header. The header is the
    first of the first rows that fills more than half as many cells as the fullest of them. `None` stands for a
    row that could not be read."""
    sample = list(itertools.islice(records, HEADER_SEARCH_ROWS))
    filled = [_filled(cells) for cells in sample]
    fullest = max(filled, default=0)
    if not fullest:
        raise FileProblem(_("The file has no header row."))
    index = next(i for i, count in enumerate(filled) if 2 * count > fullest)
    return index + 1, sample[index], itertools.chain(sample[index + 1 :], records)


def _csv(path: Path, encoding: str, head: bytes) -> Table:
    sample = head.decode(encoding, errors="replace")
    try:
        dialect = csv.Sniffer().sniff(sample[:65536], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    csv.field_size_limit(MAX_CELL_CHARS * 4)
    reader = csv.reader(text_lines(path, encoding), delimiter=delimiter)

    def records() -> Iterator[list[str] | None]:
        while True:
            try:
                yield next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield None

    header_row, header, after = _header(records())
    columns = _columns(header)

    def rows() -> Iterator[tuple[int, dict[str, object] | RowProblem]]:
        for number, cells in enumerate(after, start=header_row + 1):
            if cells is None:
                yield number, RowProblem(_("The row is not valid CSV (a quote is not closed, or a cell is too long)."))
                continue
            # The checks look at the row's text joined once: a million rows pass them in the importing process.
            text = "".join(cells)
            if not text or text.isspace():
                continue
            if len(cells) > len(columns):
                yield (
                    number,
                    RowProblem(
                        _("The row has %(n)s cells but the header has %(m)s columns.")
                        % {"n": len(cells), "m": len(columns)}
                    ),
                )
                continue
            if "\ufffd" in text:
                yield (
                    number,
                    RowProblem(_("The row has bytes that are not valid %(encoding)s text.") % {"encoding": encoding}),
                )
                continue
            if len(text) > MAX_CELL_CHARS and max(map(len, cells)) > MAX_CELL_CHARS:
                yield number, _cell_too_long()
                continue
            if '="' in text:
                cells = [_formula_text(cell) for cell in cells]
            yield number, _total_row(cells) or dict(zip(columns, cells, strict=False))

    return Table(columns, rows(), "csv", encoding, {"delimiter": delimiter}, header_row)


def _columns(header: list) -> list[str]:
    columns = [str(h if h is not None else "").strip().lstrip("\ufeff") for h in header]
    while columns and not columns[-1]:
        columns.pop()
    if not any(columns):
        raise FileProblem(_("The file has no header row."))
    if len(columns) > MAX_COLUMNS:
        raise FileProblem(_("The file has more than %(n)s columns.") % {"n": MAX_COLUMNS})
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(columns):
        name = name or _("Column %(n)s") % {"n": i + 1}
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        raise FileProblem(_("The file is not a valid Excel (.xlsx) workbook.")) from None
    unzipped = sum(e.file_size for e in entries)
    packed = sum(e.compress_size for e in entries) or 1
    if len(entries) > MAX_ZIP_ENTRIES or unzipped > MAX_UNZIPPED_BYTES or unzipped / packed > MAX_ZIP_RATIO:
        raise FileProblem(_("The workbook unpacks to far more than its size (a zip bomb?) and was refused."))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        # A phone typed as a number: 13812345678.0 is 13812345678. Excel keeps 15 significant digits, so a longer
        # number (an ID number typed as one) has lost its last ones: written as Excel shows it, it says so.
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _caused_by(error: BaseException, kind: type) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


def _pick_sheet(
    names: list[str], visible: list[str], wanted: str, records_of: Callable[[str], Iterator]
) -> tuple[str, int, list, Iterator]:
    """(sheet, header row, header, rows after it) of the sheet named `wanted`, or else of the first visible sheet
    with a header (an empty first sheet, or a hidden one holding a drop-down's choices, is passed over)."""
    if wanted:
        if wanted not in names:
            raise FileProblem(
                _("The workbook has no sheet “%(sheet)s”; its sheets are: %(names)s.")
                % {"sheet": wanted, "names": ", ".join(visible)}
            )
        return wanted, *_header(records_of(wanted))
    for name in visible:
        try:
            return name, *_header(records_of(name))
        except FileProblem:
            continue
    raise FileProblem(_("The file has no header row."))


def _sheet_table(
    file_format: str,
    picked: tuple[str, int, list, Iterator],
    sheets: list[str],
    close: Callable[[], None],
    encoding: str = "",
) -> Table:
    """The table of a spreadsheet's rows of cell values (numbers, dates, text), read until `close`."""
    sheet, header_row, header, values = picked
    columns = _columns(list(header))

    def rows() -> Iterator[tuple[int, dict[str, object] | RowProblem]]:
        number = header_row
        try:
            for cells in values:
                number += 1
                texts = [_cell_text(v) for v in cells]
                if not any(t.strip() for t in texts):
                    continue
                if any(t.strip() for t in texts[len(columns) :]):
                    yield number, RowProblem(_("The row has cells beyond the last named column."))
                    continue
                problem = next((p for p in map(_cell, texts) if isinstance(p, RowProblem)), None)
                yield number, problem or _total_row(texts) or dict(zip(columns, texts, strict=False))
        except Exception as error:  # the parsers raise many types for a damaged part further on
            yield (
                number,
                RowProblem(
                    _("The rest of the workbook could not be read (%(reason)s).") % {"reason": type(error).__name__}
                ),
            )
        finally:
            close()

    return Table(columns, rows(), file_format, encoding, header_row=header_row, sheet=sheet, sheets=sheets)


def _xlsx(path: Path, sheet: str) -> Table:
    import openpyxl  # with defusedxml installed, openpyxl refuses entity expansion (billion laughs)

    _check_zip(path)
    # A file object, not the path: openpyxl judges a path by its extension, and stored uploads have none.
    handle = path.open("rb")
    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        names = workbook.sheetnames
        visible = [ws.title for ws in workbook.worksheets if ws.sheet_state == "visible"]
        picked = _pick_sheet(names, visible, sheet, lambda name: _xlsx_records(workbook[name]))
    except FileProblem:
        handle.close()
        raise
    except Exception as error:  # openpyxl raises many types for damaged or hostile files
        handle.close()
        if _caused_by(error, EntitiesForbidden):
            raise FileProblem(
                _("The workbook declares XML entities (a “billion laughs” attack?) and was refused.")
            ) from None
        raise FileProblem(
            _("The Excel workbook could not be read (%(reason)s).") % {"reason": type(error).__name__}
        ) from None

    def close() -> None:
        workbook.close()
        handle.close()

    return _sheet_table("xlsx", picked, visible, close)


def _fill_merged_down(rows: Iterable[tuple[Sequence, dict[int, int]]]) -> Iterator[list]:
    """Each row's values, a cell merged over several rows giving its value to each of them (an order's number over
    its lines, a company over its contacts); one merged over several columns stays in the first, as Excel shows
    it. `rows` pairs each row's values with the merges that start in it, column index → last row."""
    spanning: dict[int, tuple[int, object]] = {}  # column → (the merge's last row, its value)
    for number, (values, merges) in enumerate(rows, start=1):
        for column, last in merges.items():
            if column < len(values):
                spanning[column] = (last, values[column])
        if spanning:
            values = list(values)
            for column, (last, value) in list(spanning.items()):
                if number > last:
                    del spanning[column]
                elif column >= len(values) or values[column] in (None, ""):
                    values.extend([None] * (column + 1 - len(values)))
                    values[column] = value
        yield values


def _xlsx_records(sheet) -> Iterator[list]:
    merges = _xlsx_merged_down(sheet)  # openpyxl's streaming reader leaves the cells under a merge empty
    return _fill_merged_down(
        (values, merges.get(number, {})) for number, values in enumerate(sheet.iter_rows(values_only=True), 1)
    )


def _xlsx_merged_down(sheet) -> dict[int, dict[int, int]]:
    """first row → {column index: last row} of the sheet's merges over several rows. They are listed after the
    rows in the sheet's XML, which the streaming reader does not read: found here in one pass over its bytes
    (markup, as cell text is escaped)."""
    from openpyxl.utils.cell import column_index_from_string

    merged: dict[int, dict[int, int]] = {}
    buffer = b""
    with sheet._get_source() as source:  # the sheet's XML in the workbook's zip (openpyxl's read-only API)
        while chunk := source.read(SAMPLE_BYTES):
            # The last bytes stay for the next chunk, so that a tag cut in two is found whole (finding one twice
            # changes nothing).
            buffer = buffer[-256:] + chunk
            for first_column, first_row, _last_column, last_row in _MERGE_CELL.findall(buffer):
                if int(last_row) > int(first_row):
                    column = column_index_from_string(first_column.decode()) - 1
                    merged.setdefault(int(first_row), {})[column] = int(last_row)
    return merged


def _xls(path: Path, sheet: str) -> Table:
    """Excel 97–2003 (.xls), which accounting and ERP systems in China still export. The file is read whole: the
    format holds at most 65,536 rows."""
    try:
        # xlrd writes its warnings to stdout unless given somewhere else.
        book = xlrd.open_workbook(path, logfile=io.StringIO(), formatting_info=True, on_demand=True)
        names = book.sheet_names()
        visible = [name for name in names if not book.sheet_by_name(name).visibility]
        picked = _pick_sheet(names, visible, sheet, lambda name: _xls_records(book, book.sheet_by_name(name)))
    except FileProblem:
        raise
    except Exception as error:  # xlrd raises XLRDError, but also struct and index errors on damaged files
        raise FileProblem(
            _(
                "The Excel 97–2003 workbook (.xls) could not be read (%(reason)s). If it has a password, save it "
                "without one."
            )
            % {"reason": type(error).__name__}
        ) from None
    return _sheet_table("xls", picked, visible, book.release_resources)


def _xml2003(path: Path, sheet: str) -> Table:
    try:
        names, visible = spreadsheetml.sheets(path)
        picked = _pick_sheet(names, visible, sheet, lambda name: _fill_merged_down(spreadsheetml.records(path, name)))
    except FileProblem:
        raise
    except EntitiesForbidden:
        raise FileProblem(
            _("The workbook declares XML entities (a “billion laughs” attack?) and was refused.")
        ) from None
    except Exception as error:  # the XML parser's errors, and defusedxml's refusals of DTDs and external entities
        raise FileProblem(
            _("The Excel 2003 XML workbook could not be read (%(reason)s).") % {"reason": type(error).__name__}
        ) from None
    return _sheet_table("xml2003", picked, visible, lambda: None)


def _xls_records(book, sheet) -> Iterator[list]:
    merges: dict[int, dict[int, int]] = {}
    for first_row, end_row, column, _end_column in sheet.merged_cells:  # 0-based, ends excluded
        if end_row - first_row > 1:
            merges.setdefault(first_row + 1, {})[column] = end_row
    return _fill_merged_down(
        ([_xls_value(cell, book.datemode) for cell in sheet.row(row)], merges.get(row + 1, {}))
        for row in range(sheet.nrows)
    )


def _xls_value(cell, datemode: int) -> object:
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, datemode)
        except (xlrd.XLDateError, ValueError, OverflowError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERROR")
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    return cell.value


class _HtmlTableRows(HTMLParser):
    """The rows of a page's tables as lists of cell text: the "Excel" files many web back-ends export are an HTML
    table named .xls. Nested tables are not read. As in Excel, a cell spanning several columns keeps its text in
    the first; one spanning several rows repeats it in each."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.finished: list[list[str]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.span = (1, 1)
        self.down: dict[int, list] = {}  # column → [rows left, text] of cells spanning down into later rows

    def close(self) -> None:
        super().close()
        self._end_row()

    def take(self) -> list[list[str]]:
        finished, self.finished = self.finished, []
        return finished

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.depth += 1
        elif self.depth != 1:
            return
        elif tag == "tr":
            self._end_row()
            self.row = []
        elif tag in ("td", "th"):
            self._end_cell()
            attributes = dict(attrs)
            self.cell = []
            self.span = (_span(attributes.get("colspan"), MAX_COLUMNS), _span(attributes.get("rowspan"), 65_536))
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            if self.depth == 1:
                self._end_row()
            self.depth = max(self.depth - 1, 0)
        elif self.depth == 1 and tag in ("td", "th"):
            self._end_cell()
        elif self.depth == 1 and tag == "tr":
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self.depth == 1 and self.cell is not None:
            self.cell.append(_HTML_SPACE.sub(" ", data))

    def _spanned_down(self, column: int) -> str | None:
        spanning = self.down.get(column)
        if spanning is None:
            return None
        spanning[0] -= 1
        if not spanning[0]:
            del self.down[column]
        return spanning[1]

    def _end_cell(self) -> None:
        if self.cell is None:
            return
        if self.row is None:
            self.row = []
        while (text := self._spanned_down(len(self.row))) is not None:
            self.row.append(text)
        text = "\n".join(line.strip() for line in "".join(self.cell).split("\n")).strip()
        columns, rows = self.span
        if rows > 1:
            self.down[len(self.row)] = [rows - 1, text]
        self.row += [text] + [""] * (columns - 1)
        self.cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self.row is None:
            return
        for column in sorted(c for c in self.down if c >= len(self.row)):
            self.row += [""] * (column - len(self.row))
            self.row.append(self._spanned_down(column))
        self.finished.append(self.row)
        self.row = None


def _span(value: str | None, limit: int) -> int:
    try:
        return min(max(int(value or 1), 1), limit)
    except ValueError:
        return 1


def _html(path: Path, encoding: str) -> Table:
    parser = _HtmlTableRows()

    def records() -> Iterator[list[str]]:
        with path.open("r", encoding=encoding, errors="replace") as handle:
            while chunk := handle.read(SAMPLE_BYTES):
                parser.feed(chunk)
                yield from parser.take()
        parser.close()
        yield from parser.take()

    return _sheet_table("html", ("", *_header(records())), [], lambda: None, encoding)
