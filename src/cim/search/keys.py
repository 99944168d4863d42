"""The search keys of a customer and of a query. Both sides go through the same functions, so they agree.

Names and company names are personal but not sensitive: their folded text, pinyin and pinyin initials are
stored as plaintext keys, with every suffix so that a query can start anywhere in the name (三丰 finds
张三丰). Phones and emails are sensitive: only keyed hashes of the normalised value and of its searchable
fragments (last four digits, local-part prefixes) are stored (DESIGN §5).
"""

import hashlib
import hmac
import re
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from pypinyin import lazy_pinyin

from cim.quality.normalize import fold

MAX_KEY = 64
MAX_SUFFIX_CHARS = 24
EMAIL_PREFIX_MIN = 3
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_HAN}]")
_WORDS = re.compile(f"[{_HAN}]+|[^\\W_{_HAN}]+")


def hash_key(kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:value` under the search key, truncated to 128 bits (hex)."""
    digest = hmac.new(settings.CIM_SEARCH_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


@lru_cache(maxsize=200_000)
def text_keys(text: str) -> frozenset[str]:
    """Plaintext keys of a name: its folded words, and for Chinese its suffixes, pinyin and initials.

    A Chinese character and a Latin word are each one unit; suffixes start at unit boundaries.
    """
    words = _WORDS.findall(fold(text))
    if not words:
        return frozenset()
    keys = set(words)
    units = [u for w in words for u in (w if _CJK.match(w) else [w])]
    keys.add("".join(units))
    if len(units) > 1 and any(_CJK.match(u) for u in units):
        units = units[:MAX_SUFFIX_CHARS]
        syllables = [_syllable(u) for u in units]
        initials = [s[0] for s in syllables]
        for i in range(len(units)):
            keys.add("".join(units[i:]))
            keys.add("".join(syllables[i:]))
            keys.add("".join(initials[i:]))
    elif units and _CJK.match(units[0]):
        syllable = _syllable(units[0])
        keys.update((syllable, syllable[0]))
    return frozenset(k[:MAX_KEY] for k in keys)


@lru_cache(maxsize=50_000)
def _syllable(unit: str) -> str:
    return lazy_pinyin(unit)[0] if _CJK.match(unit) else unit


def phone_keys(e164: str) -> set[str]:
    digits = e164.lstrip("+")
    return {hash_key("phone", e164), hash_key("phone4", digits[-4:])}


def email_keys(address: str) -> set[str]:
    local = address.split("@", 1)[0]
    keys = {hash_key("email", address)}
    keys.update(hash_key("emailp", local[:n]) for n in range(EMAIL_PREFIX_MIN, min(len(local), 32) + 1))
    return keys


def customer_keys(
    *, names: Iterable[str], phones: Iterable[str], emails: Iterable[str], number: str
) -> tuple[set[str], set[str]]:
    """(text keys, hashed keys) of one customer."""
    text: set[str] = {number.lower()}
    for name in names:
        if name:
            text |= text_keys(name)
    hashed: set[str] = set()
    for phone in phones:
        hashed |= phone_keys(phone)
    for email in emails:
        hashed |= email_keys(email)
    return text, hashed
