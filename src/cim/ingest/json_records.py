"""The records of a JSON document, streamed: the items of a top-level array, or of the first array of objects a
top-level object holds ({"total": 2, "data": [...]}), as APIs and other systems export them.

Built from ijson's basic events, which carry no path: its path-keeping parser makes a string of every enclosing
key for each event, which a deeply nested file turns into gigabytes. Nesting deeper than `MAX_DEPTH` is refused.
"""

from collections.abc import Iterator
from typing import BinaryIO

import ijson

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
