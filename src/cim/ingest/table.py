"""What every reader of an import file gives: a table of rows, and the problems of a file or of a row."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class FileProblem(ValueError):
    """The file as a whole cannot be read; the message says why, in the user's language."""


@dataclass
class RowProblem:
    """One row could not be read; the import reports it and goes on."""

    message: str


@dataclass
class Table:
    """A readable file: its column names and a one-pass iterator of (row number, cells or a RowProblem).

    Row numbers are what a person sees: with the header on row 1 of a spreadsheet, the first data row is 2.
    `header_row` is where the header was found (rows above it, a title or the export time, are not read); in a
    workbook, `sheet` is the sheet read, one of its visible `sheets`."""

    columns: list[str]
    rows: Iterator[tuple[int, dict[str, object] | RowProblem]]
    file_format: str
    encoding: str = ""
    extra: dict = field(default_factory=dict)
    header_row: int = 1
    sheet: str = ""
    sheets: list[str] = field(default_factory=list)


def text_lines(path: Path, encoding: str) -> Iterator[str]:
    """Lines of text; a byte sequence the encoding cannot decode becomes U+FFFD, reported by the row it is in."""
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        yield from handle
