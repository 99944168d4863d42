"""The tokens of a customer's search document, and the token expression of a query. Both sides are made here,
so they agree, and both database backends match the same tokens the same way (AND, OR, exact or prefix).

A name is cut into units (a Chinese character, a Latin word or a number) and indexed as:
- its suffixes, "张三丰 三丰 丰": a prefix of one is any piece of the name that starts at a unit;
- for names with Chinese, pinyin syllables (surnames read as surnames, and as written too: 单 shan and dan)
  alone (marked SYLLABLE: zhang, san, feng) and with the next one
  (marked PAIR: zhangsan, sanfeng), so "zhangsanf" is zhang+san AND san+f…, and "zhan" is zhan OR zhang:
  lists of exact tokens, never a prefix over every spelling that starts like that;
- the initials' suffixes, "zsf sf f".
Phones and emails are sensitive: only keyed hashes of their searchable fragments (last four digits, local-part
prefixes) become tokens (marked HASH), never their text (DESIGN §5). Whole phone numbers, emails, resident ID
numbers and customer numbers are matched on their own indexed columns instead (see `SearchPlan`).

Marks are private-use characters, which no folded name contains, so a typed word can never reach a marked
token; the backends' tokenizers keep every non-ASCII character inside a token.
"""

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from django.core.exceptions import ValidationError

from cim.core.blind_index import blind_token
from cim.customers.numbering import normalize_number
from cim.quality.names import SYLLABLES, name_pinyin, plain_pinyin
from cim.quality.normalize import fold, normalize_email, normalize_id_number, normalize_phone

HASH, PAIR, SYLLABLE = "\ue000", "\ue001", "\ue002"
MAX_UNITS = 24
MAX_TOKEN = 64
MAX_TERMS = 5
EMAIL_PREFIX_MIN = 3
# Longer typed prefixes are matched on their first ten characters: a handful of extra candidates at most,
# against a token per character of every address.
EMAIL_PREFIX_MAX = 10
MAX_READINGS = 8
MAX_PINYIN = 36

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_HAN}]")
_WORDS = re.compile(f"[{_HAN}]+|[^\\W_{_HAN}]+")
# What a typed word may not hold: ASCII punctuation and space, which the tokenizers split on, and the marks.
# (Units of names never hold either: they are runs of letters and digits.)
_NOT_TOKEN = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\ue000-\uf8ff]")
_LATIN = re.compile(r"^[a-z]+$")
_EMAIL_PREFIX = re.compile(r"^[a-z0-9._+-]+$")
# `+` may follow the bracket: "(+86) 138-1234-5678" is a common way to write a number.
_PHONE_LIKE = re.compile(r"^[\d\s()+-]{7,}$")
_ID_NUMBER_LIKE = re.compile(r"^\d{17}[\dxX]$")
_SPLIT = re.compile(r"[\s,;，；、]+")
_STRIP = re.compile(r"[^\w@.+-]")
# The beginning of a customer number, up to its first dash at least (C2026-, C2026-0001).
_NUMBER_PREFIX = re.compile(r"^[A-Z]{0,6}\d{0,6}-\d{0,12}(?:-\d?)?$")
_DATE_PART = re.compile(r"^\d{1,6}$")


# --- the document side


@lru_cache(maxsize=200_000)
def name_tokens(text: str) -> tuple[str, ...]:
    """The tokens of one name (display name, alias, English name, company)."""
    words = _WORDS.findall(fold(text))
    units = [u for w in words for u in (w if _CJK.match(w) else [w])][:MAX_UNITS]
    if not units:
        return ()
    if not any(_CJK.match(u) for u in units):
        # "John Smith": johnsmith, smith.
        return tuple((a + b)[:MAX_TOKEN] for a, b in zip(units, [*units[1:], ""], strict=True))
    tokens = ["".join(units[i:]) for i in range(len(units))]
    # The surname as a surname (单 shan) and, where that differs, as the character alone (dan): people type both.
    readings = [name_pinyin(units)]
    if (plain := plain_pinyin(units)) != readings[0]:
        readings.append(plain)
    for syllables in readings:
        tokens += [SYLLABLE + s for s in syllables]
        tokens += [PAIR + a + b for a, b in pairwise(syllables)]
        initials = "".join(s[0] for s in syllables)
        tokens += [initials[i:] for i in range(len(initials))]
    return tuple(dict.fromkeys(t[:MAX_TOKEN] for t in tokens))


def phone_tokens(e164: str) -> list[str]:
    return [HASH + blind_token("phone4", e164[-4:])]


def email_tokens(address: str) -> list[str]:
    local = address.split("@", 1)[0]
    last = min(len(local), EMAIL_PREFIX_MAX)
    return [HASH + blind_token("emailp", local[:n]) for n in range(EMAIL_PREFIX_MIN, last + 1)]


def document(*, names, phones, emails) -> str:
    """A customer's search document: its tokens, space-separated, each once."""
    tokens: dict[str, None] = {}
    for name in names:
        if name:
            tokens.update(dict.fromkeys(name_tokens(name)))
    for phone in phones:
        tokens.update(dict.fromkeys(phone_tokens(phone)))
    for email in emails:
        tokens.update(dict.fromkeys(email_tokens(email)))
    tokens.pop("", None)
    return " ".join(tokens)


# --- the query side


@dataclass(frozen=True)
class Token:
    text: str
    prefix: bool = False


@dataclass(frozen=True)
class Node:
    """All (`op="and"`) or any (`op="or"`) of its items, which are tokens or nodes."""

    op: str
    items: tuple


@dataclass
class SearchPlan:
    """What a query asks for: every word must match, through the index (`match`) or an exact column."""

    match: Node | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    number_prefixes: list[str] = field(default_factory=list)
    id_numbers: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.match or self.phones or self.emails or self.number_prefixes or self.id_numbers)


@lru_cache(maxsize=4096)
def _completions(start: str) -> tuple[str, ...]:
    """The syllables that begin with `start`: "zhan" → (zhan, zhang)."""
    return tuple(sorted(s for s in SYLLABLES if s.startswith(start)))


def _readings(term: str) -> list[list[str]]:
    """Ways to read `term` as pinyin syllables, the last one possibly unfinished: "zhangsanf" → [zhang, san, f]."""
    if len(term) > MAX_PINYIN:
        return []
    # finishes[i]: whether term[i:] reads as syllables; walking only into such positions never backtracks.
    finishes = [False] * (len(term) + 1)
    for start in range(len(term) - 1, -1, -1):
        finishes[start] = bool(_completions(term[start:])) or any(
            term[start:end] in SYLLABLES and finishes[end] for end in range(start + 1, min(len(term), start + 6) + 1)
        )
    found: list[list[str]] = []

    def walk(start: int, pieces: list[str]) -> None:
        if _completions(term[start:]):
            found.append([*pieces, term[start:]])
        for end in range(min(len(term) - 1, start + 6), start, -1):
            if len(found) < MAX_READINGS and finishes[end] and term[start:end] in SYLLABLES:
                walk(end, [*pieces, term[start:end]])

    walk(0, [])
    return found[:MAX_READINGS]


def _pinyin_node(pieces: list[str]) -> Node | None:
    """The tokens of one reading: its finished syllables in pairs, the last pair any syllable the last piece begins."""
    *whole, last = pieces
    if not whole:
        # One letter is an initial, which the initials' suffixes already find.
        return Node("or", tuple(Token(SYLLABLE + s) for s in _completions(last))) if len(last) > 1 else None
    pairs = [Token(PAIR + a + b) for a, b in pairwise(whole)]
    pairs.append(Node("or", tuple(Token(PAIR + whole[-1] + s) for s in _completions(last))))
    return Node("and", tuple(pairs))


def _text_node(raw_term: str) -> Node | None:
    term = _STRIP.sub("", fold(raw_term))
    if "@" in term:
        term = term.replace("@", "")
    text = _NOT_TOKEN.sub("", term)[:MAX_TOKEN]
    if not text:
        return None
    items: list = [Token(text, prefix=True)]
    if _LATIN.match(text):
        items += [node for pieces in _readings(text) if (node := _pinyin_node(pieces))]
    if text.isdigit() and len(text) == 4:
        items.append(Token(HASH + blind_token("phone4", text)))
    if len(term) >= EMAIL_PREFIX_MIN and _EMAIL_PREFIX.match(term):
        items.append(Token(HASH + blind_token("emailp", term[:EMAIL_PREFIX_MAX])))
    return Node("or", tuple(items))


def _is_number_prefix(number: str, scheme_prefix: str) -> bool:
    """Whether a word is the beginning of a customer number: C2026-00, or the scheme's letters and a date (C2026)."""
    if _NUMBER_PREFIX.match(number):
        return True
    return (
        bool(scheme_prefix)
        and number.startswith(scheme_prefix)
        and bool(_DATE_PART.match(number[len(scheme_prefix) :]))
    )


def search_plan(query: str, *, scheme_prefix: str = "") -> SearchPlan:
    """The plan of a typed query: up to MAX_TERMS words, each of which must match. `scheme_prefix` is the letters
    customer numbers start with, so that "C2026" is read as a number."""
    plan = SearchPlan()
    query = query.strip()
    # A phone number written with spaces is one word, not three.
    terms = [query] if _PHONE_LIKE.match(query) else [t for t in _SPLIT.split(query) if t][:MAX_TERMS]
    words = []
    for term in terms:
        if _ID_NUMBER_LIKE.match(term):
            try:
                plan.id_numbers.append(normalize_id_number(term))
                continue
            except ValidationError:
                pass
        if _PHONE_LIKE.match(term):
            try:
                plan.phones.append(normalize_phone(term))
                continue
            except ValidationError:
                pass
        if "@" in fold(term):
            try:
                plan.emails.append(normalize_email(term))
                continue
            except ValidationError:
                pass
        number = normalize_number(term)
        if _is_number_prefix(number, scheme_prefix):
            plan.number_prefixes.append(number)
            continue
        if node := _text_node(term):
            words.append(node)
    if words:
        plan.match = Node("and", tuple(words))
    return plan
