"""Password rules Django does not ship: an upper bound, so passphrases are welcome but hashing cannot be abused, and a
check against the passwords of known data breaches (HIBP's Pwned Passwords), offline from a file and, opt-in, online.
"""

import hashlib
import logging
import mmap
import os
import re

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, ngettext

logger = logging.getLogger(__name__)

PWNED_LINE = re.compile(rb"([0-9A-F]{40}):([0-9]+)\r?")
NTLM_LINE = re.compile(rb"[0-9A-F]{32}:[0-9]+\r?")
PWNED_API_TIMEOUT = 2.0
_PROBES = 16  # lines sampled by the format check: the first, the last and 14 between


class MaximumLengthValidator:
    """At most `max_length` characters (ASVS 5.0 V6.2.9 asks that at least 64 be allowed; CIM allows 128)."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    self.max_length,
                ),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return ngettext(
            "Your password can be a long passphrase of up to %(max_length)d character.",
            "Your password can be a long passphrase of up to %(max_length)d characters.",
            self.max_length,
        ) % {"max_length": self.max_length}


class BreachedPasswordValidator:
    """Refuses a password listed in Pwned Passwords (ASVS 5.0 V6.2.12): in CIM_PWNED_PASSWORDS_FILE and, when switched
    on, by CIM_PWNED_PASSWORDS_API. A file that cannot be read or a service that does not answer refuses nothing
    (`cim check --deploy` names the file's problem); neither the password nor its hash is ever logged."""

    def validate(self, password: str, user=None) -> None:
        if password_breached(password):
            raise ValidationError(
                gettext("This password has appeared in data breaches, so attackers try it early. Choose another one."),
                code="password_breached",
            )

    def get_help_text(self) -> str:
        return gettext("Your password can’t be one that has appeared in data breaches.")


def password_sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()


def password_breached(password: str) -> bool:
    """Whether the configured file or service lists the password (any count)."""
    sha1 = password_sha1(password)
    if path := settings.CIM_PWNED_PASSWORDS_FILE:
        try:
            if pwned_file_count(path=path, sha1=sha1):
                return True
        except (OSError, ValueError) as error:
            logger.error("Pwned Passwords file %s cannot be read (%s); run `cim check --deploy`", path, error)
    if url := settings.CIM_PWNED_PASSWORDS_API:
        return bool(pwned_api_count(url=url, sha1=sha1))
    return False


def _line_at(mm: mmap.mmap, pos: int) -> tuple[int, int]:
    """Start and end (exclusive, without the newline) of the line that holds byte `pos`."""
    start = mm.rfind(b"\n", 0, pos) + 1
    end = mm.find(b"\n", pos)
    return start, len(mm) if end < 0 else end


def pwned_file_count(*, path: str, sha1: str) -> int:
    """How often the hash is in the sorted `HASH:COUNT` file; 0 when it is not. A binary search over the bytes of the
    memory-mapped file: about 35 line reads for the full file (a billion lines), nothing loaded, no index."""
    key = sha1.encode()
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        lo, hi = 0, len(mm)  # every line starting before lo sorts before key, every line starting at hi or later after
        while lo < hi:
            start, end = _line_at(mm, (lo + hi) // 2)
            found = mm[start : start + 40]
            if found == key:
                match = PWNED_LINE.fullmatch(mm[start:end])
                return int(match.group(2)) if match else 0
            if found < key:
                lo = end + 1
            else:
                hi = start
    return 0


def _probe_lines(mm: mmap.mmap) -> list[bytes]:
    """The first line, the last one and a few evenly spread between, in file order."""
    size = len(mm)
    lines, last_start = [], -1
    for i in range(_PROBES):
        start, end = _line_at(mm, min(size - 1, size * i // (_PROBES - 1)))
        if start != last_start:
            lines.append(mm[start:end])
            last_start = start
    return lines


def pwned_file_problem(path: str) -> str | None:
    """What is wrong with the file, in one sentence, or None. Checks sampled lines only: constant time at any size."""
    try:
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return f"{path} is empty."
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                lines = _probe_lines(mm)
    except (OSError, ValueError) as error:
        return f"{path} cannot be read: {getattr(error, 'strerror', None) or error}."
    for line in lines:
        if NTLM_LINE.fullmatch(line):
            return f"{path} holds NTLM hashes; CIM needs the SHA-1 file (haveibeenpwned-downloader without -n)."
        if not PWNED_LINE.fullmatch(line):
            return f"{path} is not a Pwned Passwords SHA-1 file: a line is not HASH:COUNT (40 upper-case hex digits)."
    hashes = [line[:40] for line in lines]
    if hashes != sorted(set(hashes)):
        return f"{path} is not sorted by hash."
    return None


def pwned_file_summary(path: str) -> dict:
    """Size, an estimate of the number of entries (from the sampled lines' length), first and last hash."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        lines = _probe_lines(mm)
        size = len(mm)
    average = sum(len(line) + 1 for line in lines) / len(lines)
    return {
        "bytes": size,
        "entries_estimate": round(size / average),
        "first": lines[0][:40].decode("ascii", "replace"),
        "last": lines[-1][:40].decode("ascii", "replace"),
    }


def pwned_api_count(*, url: str, sha1: str) -> int | None:
    """How often the range API lists the hash (0: not listed), or None when it cannot be asked. Only the first five hex
    digits are sent (k-anonymity); padding entries, with count 0, are fake and not a breach."""
    prefix, suffix = sha1[:5], sha1[5:]
    try:
        response = httpx.get(
            f"{url}{prefix}",
            headers={"Add-Padding": "true", "User-Agent": "CIM"},
            timeout=PWNED_API_TIMEOUT,
        )
        response.raise_for_status()
    except httpx.HTTPError as error:
        # The prefix is part of the URL httpx puts in some messages: only the kind of failure is logged.
        logger.warning(
            "Pwned Passwords API unreachable (%s); the password was not checked against it", type(error).__name__
        )
        return None
    for line in response.text.splitlines():
        found, _, count = line.strip().partition(":")
        if found.upper() == suffix and count.isdigit():
            return int(count)
    return 0
