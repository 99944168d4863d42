"""The Simplified Chinese catalogue: complete, no fuzzy entries, placeholders intact, and served to zh-Hans browsers."""

import re
from collections import Counter
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

MESSAGES = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = MESSAGES / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")
KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$')


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_po(text: str) -> list[dict]:
    """Entries as dicts: `flags` (set), `msgid`, optional `msgid_plural`, and `msgstr` or `msgstr[n]` strings.

    Entries are separated by blank lines; a line holding only a quoted string continues the keyword above it.
    Obsolete entries (`#~`) are comments and are skipped.
    """
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry: dict = {"flags": set()}
        keyword = None
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            elif line.startswith("#") or not line:
                continue
            elif match := KEYWORD.match(line):
                keyword = match.group(1)
                entry[keyword] = _unquote(match.group(2))
            elif line.startswith('"') and keyword:
                entry[keyword] += _unquote(line)
            else:
                raise AssertionError(f"cannot parse line in {PO_FILE.name}: {line!r}")
        if "msgid" in entry:
            entries.append(entry)
    return entries


def translations(entry: dict) -> dict[str, str]:
    return {key: value for key, value in entry.items() if key.startswith("msgstr")}


def placeholders(text: str) -> Counter:
    return Counter(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return parse_po(PO_FILE.read_text(encoding="utf-8"))


def test_header_declares_simplified_chinese_with_one_plural_form(entries):
    header = entries[0]
    assert header["msgid"] == ""
    assert "Language: zh_Hans\n" in header["msgstr"]
    assert "Plural-Forms: nplurals=1; plural=0;\n" in header["msgstr"]
    assert "fuzzy" not in header["flags"]


def test_every_entry_is_translated_and_not_fuzzy(entries):
    body = entries[1:]
    assert len(body) > 100, "the catalogue looks truncated"
    fuzzy = [e["msgid"] for e in body if "fuzzy" in e["flags"]]
    empty = [e["msgid"] for e in body if not translations(e) or not all(translations(e).values())]
    assert not fuzzy, f"fuzzy entries: {fuzzy}"
    assert not empty, f"untranslated entries: {empty}"


def test_plural_entries_have_exactly_one_form(entries):
    wrong = [e["msgid"] for e in entries[1:] if "msgid_plural" in e and set(translations(e)) != {"msgstr[0]"}]
    assert not wrong, f"plural entries need msgstr[0] only (nplurals=1): {wrong}"


def test_placeholders_are_kept(entries):
    """With one plural form, msgstr[0] serves every count, so it is compared with the plural source."""
    problems = []
    for entry in entries[1:]:
        source = entry.get("msgid_plural", entry["msgid"])
        for key, text in translations(entry).items():
            if placeholders(text) != placeholders(source):
                problems.append((entry["msgid"], key, text))
    assert not problems, f"placeholders differ: {problems}"


def test_parser_reads_continued_lines_and_plurals():
    sample = (
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#, fuzzy, python-format\nmsgid ""\n"%(a)s and "\n"%(b)s"\nmsgstr "%(a)s 和 %(b)s"\n\n'
        'msgid "%(n)s tag"\nmsgid_plural "%(n)s tags"\nmsgstr[0] ""\n'
    )
    header, joined, plural = parse_po(sample)
    assert header["msgstr"] == "Language: zh_Hans\n"
    assert joined["msgid"] == "%(a)s and %(b)s" and joined["flags"] == {"fuzzy", "python-format"}
    assert placeholders(joined["msgid"]) == placeholders(joined["msgstr"])
    assert plural["msgid_plural"] == "%(n)s tags" and plural["msgstr[0]"] == ""


def _msgstr(entries, msgid: str) -> str:
    return next(e["msgstr"] for e in entries if e["msgid"] == msgid)


@pytest.mark.django_db
def test_login_page_follows_accept_language(entries):
    assert (MESSAGES / "django.mo").exists(), "compile the catalogue first: make messages"
    log_in, title = _msgstr(entries, "Log in"), _msgstr(entries, "Customer Information Management")

    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-Hans").get(reverse("login"))
    page = zh.content.decode()
    assert zh.status_code == 200
    assert log_in in page and title in page
    assert "Log in" not in page and "Customer Information Management" not in page

    en = Client(HTTP_ACCEPT_LANGUAGE="en").get(reverse("login"))
    page = en.content.decode()
    assert en.status_code == 200
    assert "Log in" in page and "Customer Information Management" in page
    assert log_in not in page and title not in page
