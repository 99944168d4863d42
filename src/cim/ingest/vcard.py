"""Contacts exported from phones and address books: vCard 2.1, 3.0 and 4.0, a card a row."""

import io
from collections.abc import Iterator
from pathlib import Path

import vobject
from django.utils.translation import gettext as _

from cim.ingest.table import RowProblem, Table, text_lines

VCARD_COLUMNS = [
    "external_id", "display_name", "family_name", "given_name", "alias", "company", "job_title",
    "birthday", "phones", "phones_work", "phones_home", "emails", "emails_work", "address", "postal_code", "notes",
]  # fmt: skip


def _phone_column(line) -> str:
    """Which phone column a TEL (or EMAIL) line fills, by its types: `TYPE=WORK` (3.0, 4.0), or a bare `WORK` (2.1,
    what Android phones write)."""
    params = line.params
    types = {t.lower() for value in params.get("TYPE", []) for t in value.split(",")} | {k.lower() for k in params}
    types |= {t.lower() for t in line.singletonparams}
    if "work" in types:
        return "phones_work"
    if "home" in types and "cell" not in types:
        return "phones_home"
    return "phones"


def _record(card) -> dict[str, object]:
    record: dict[str, object] = {}

    def first(name: str) -> str:
        lines = card.contents.get(name)
        return str(lines[0].value).strip() if lines else ""

    record["display_name"] = first("fn")
    if "n" in card.contents:
        name = card.contents["n"][0].value
        record["family_name"] = " ".join(name.family) if isinstance(name.family, list) else str(name.family)
        record["given_name"] = " ".join(name.given) if isinstance(name.given, list) else str(name.given)
    record["alias"] = first("nickname")
    if "org" in card.contents:
        org = card.contents["org"][0].value
        record["company"] = org[0] if isinstance(org, list) and org else str(org)
    record["job_title"] = first("title")
    record["birthday"] = first("bday")
    record["notes"] = first("note")
    record["external_id"] = first("uid")
    for line in card.contents.get("tel", []):
        number = str(line.value).removeprefix("tel:")
        record.setdefault(_phone_column(line), []).append(number)
    for line in card.contents.get("email", []):
        column = "emails_work" if "work" in _phone_column(line) else "emails"
        record.setdefault(column, []).append(str(line.value))
    if "adr" in card.contents:
        adr = card.contents["adr"][0].value
        parts = (
            [adr.country, adr.region, adr.city, adr.street]
            if adr.country in ("中国", "CN", "China")
            else [adr.street, adr.city, adr.region, adr.code, adr.country]
        )
        record["address"] = " ".join(str(p).strip() for p in parts if p and str(p).strip())
        record["postal_code"] = str(adr.code).strip()
    return {k: v for k, v in record.items() if v}


def _soft_line_break(line: str) -> bool:
    """Whether a vCard 2.1 line goes on in the next: a quoted-printable value ending in `=` (Android phones split
    long names so, often inside a character's bytes)."""
    return line.rstrip("\r\n").endswith("=") and "QUOTED-PRINTABLE" in line.split(":", 1)[0].upper()


def vcard_table(path: Path, encoding: str) -> Table:
    """vCard 2.1/3.0/4.0, as phones export contacts (2.1 with quoted-printable names included)."""

    def cards() -> Iterator[list[str]]:
        card: list[str] = []
        for line in text_lines(path, encoding):
            if line.strip().upper() == "BEGIN:VCARD":
                card = [line]
            elif card and _soft_line_break(card[-1]):
                card[-1] = card[-1].rstrip("\r\n")[:-1] + line
            elif card:
                card.append(line)
                if line.strip().upper() == "END:VCARD":
                    yield card
                    card = []

    def rows() -> Iterator[tuple[int, dict[str, object] | RowProblem]]:
        # A card is a row; its number is the card's position in the file, as contact apps count.
        for number, lines in enumerate(cards(), start=1):
            try:
                card = vobject.readOne(io.StringIO("".join(lines)), ignoreUnreadable=True)
                yield number, _record(card)
            except Exception:  # vobject raises ParseError, but also ValueError/IndexError on odd cards
                yield number, RowProblem(_("The contact card could not be read."))

    return Table(list(VCARD_COLUMNS), rows(), "vcf", encoding)
