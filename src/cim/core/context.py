"""The request context that services read without passing it around: the current request id, and a memo of reads
that several parts of one read-only request ask alike."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

_request_id: ContextVar[str] = ContextVar("cim_request_id", default="")
_memo: ContextVar[dict | None] = ContextVar("cim_request_memo", default=None)

T = TypeVar("T")


def request_id() -> str:
    """The id of the request or command being served; a new one per CLI command."""
    value = _request_id.get()
    if not value:
        value = uuid.uuid4().hex
        _request_id.set(value)
    return value


def set_request_id(value: str) -> None:
    _request_id.set(value)


@contextmanager
def request_memo() -> Iterator[None]:
    """Within: `memoized` reads are made once. For requests that write nothing (GET, HEAD), which see one state."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def memoized(key: tuple, read: Callable[[], T]) -> T:
    """`read()`, once per read-only request (e.g. the user's record scope, which the list and the navigation bar
    both ask). Elsewhere (writes, commands, jobs, tests of services) it reads every time, so nothing goes stale."""
    memo = _memo.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    return memo[key]
