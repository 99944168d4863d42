"""A binary file in any text encoding read as UTF-8 bytes, for parsers that read only UTF-8 (ijson) or a few
encodings (expat)."""

import codecs
from collections.abc import Callable


class Utf8Reader:
    """`read()` gives the file's text, decoded from `encoding` (undecodable bytes as U+FFFD), as UTF-8; `first`
    may rewrite the first text read (an XML declaration naming the old encoding)."""

    def __init__(self, handle, encoding: str, first: Callable[[str], str] | None = None) -> None:
        self._handle = handle
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._first = first

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # how ijson asks whether a file gives bytes or text
        text = ""
        while not text:
            chunk = self._handle.read(size if size > 0 else 1 << 20)
            text = self._decoder.decode(chunk, final=not chunk)
            if not chunk:
                break
        if self._first is not None:
            text, self._first = self._first(text), None
        return text.encode("utf-8")
