"""Free text of tickets and surveys, cleaned the same way everywhere."""

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_body(raw: str | None) -> str:
    """Text as typed (Chinese punctuation kept, unlike NFKC): control characters dropped, line breaks unified,
    trailing spaces and surrounding blank lines trimmed."""
    text = _CONTROL.sub("", raw or "").replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
