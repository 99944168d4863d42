"""JSON files: JSON Lines, one object a line, and JSON documents whose records are the items of a top-level
array, or of the first array of objects a top-level object holds ({"total": 2, "data": [...]}), as APIs and
other systems export them. Both are streamed.

Built from ijson's basic events, which carry no path: its path-keeping parser makes a string of every enclosing
key for each event, which a deeply nested file turns into gigabytes. Nesting deeper than `MAX_DEPTH` is refused.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import ijson
from django.utils.translation import gettext as _

from cim.ingest.recoded import Utf8Reader
from cim.ingest.table import FileProblem, RowProblem, Table, text_lines

MAX_DEPTH = 64
_OPENING = {"start_map", "start_array"}
_CLOSING = {"end_map", "end_array"}


class TooDeep(ValueError):
    """The document nests deeper than `MAX_DEPTH`."""


def records(handle: BinaryIO) -> Iterator[object]:
    """Each record as Python values (objects as dicts, numbers as Decimal); a record that is no object comes as
    it is, for the caller to refuse. Raises `ijson.JSONError` where the text stops being JSON."""
    depth = 0
    array_depth = 0  # the depth inside the record array, once found
    candidate = False  # an array just opened inside the top-level object: records only if its first is an object
    builder = None
    for event, value in ijson.basic_parse(handle):
        if event in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep(MAX_DEPTH)
        if builder is not None:
            builder.event(event, value)
            if event in _CLOSING:
                depth -= 1
                if depth == array_depth:
                    yield builder.value
                    builder = None
            continue
        if array_depth and event == "end_array" and depth == array_depth:
            return
        if candidate:
            candidate = False
            if event == "start_map":
                array_depth = depth - 1
        if not array_depth:
            if event == "start_array" and depth == 1:
                array_depth = 1
            elif event == "start_array" and depth == 2:
                candidate = True
            elif event in _CLOSING:
                depth -= 1
            continue
        builder = ijson.ObjectBuilder()
        builder.event(event, value)
        if event not in _OPENING:
            yield builder.value
            builder = None


def jsonl_table(path: Path, encoding: str) -> Table:
    """One JSON object per line. Columns are the keys of the first object; later keys are read too."""
    lines = text_lines(path, encoding)
    columns: list[str] | None = None
    pending: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        pending.append((number, line))
        try:
            value = json.loads(line)
            if isinstance(value, dict):
                columns = list(_json_record(value))
                break
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            continue
    if columns is None:
        raise FileProblem(_("The file has no JSON object on any line."))

    def parse(number: int, line: str) -> tuple[int, dict[str, object] | RowProblem]:
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                return number, RowProblem(_("The line is not a JSON object."))
            return number, _json_record(value)
        except (ValueError, RecursionError):
            return number, RowProblem(_("The line is not valid JSON."))

    def rows() -> Iterator[tuple[int, dict[str, object] | RowProblem]]:
        yield from (parse(n, line) for n, line in pending)
        for number, line in enumerate(lines, start=pending[-1][0] + 1):
            if line.strip():
                yield parse(number, line)

    return Table(columns, rows(), "jsonl", encoding)


def json_table(path: Path, encoding: str) -> Table:
    """A JSON file holding an array of objects, as APIs and other systems export them, or an object holding such
    an array ({"total": 2, "data": [...]}), its records streamed by `records`. A row's number is its object's
    place in the array. Columns are the keys of the first object; later keys are read too."""

    @contextmanager
    def utf8() -> Iterator:
        with path.open("rb") as handle:
            # ijson reads UTF-8 only; a Windows tool writes a BOM before it, a Chinese one GBK.
            yield handle if encoding == "utf-8" else Utf8Reader(handle, encoding)

    try:
        with utf8() as source:
            first = next(records(source), None)
    except TooDeep:
        raise FileProblem(_("The file nests deeper than %(n)s levels.") % {"n": MAX_DEPTH}) from None
    except ijson.JSONError:
        raise FileProblem(_("The file is not valid JSON.")) from None
    if not isinstance(first, dict):
        raise FileProblem(_("The file holds no array of JSON objects."))

    def rows() -> Iterator[tuple[int, dict[str, object] | RowProblem]]:
        number = 0
        with utf8() as source:
            try:
                for number, value in enumerate(records(source), start=1):
                    if isinstance(value, dict):
                        yield number, _json_record(value)
                    else:
                        yield number, RowProblem(_("The item is not a JSON object."))
            except (ijson.JSONError, TooDeep):
                yield number + 1, RowProblem(_("The rest of the file is not valid JSON."))

    return Table(list(_json_record(first)), rows(), "json", encoding)


def _json_record(value: dict, prefix: str = "") -> dict[str, object]:
    """An object's values as texts (a list as a list of texts), a nested object's under dotted keys:
    {"contact": {"phone": …}} gives the column contact.phone."""
    record: dict[str, object] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            record.update(_json_record(item, f"{name}."))
        else:
            record[name] = [_json_text(i) for i in item] if isinstance(item, list) else _json_text(item)
    return record


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)  # ijson reads numbers as Decimal
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
