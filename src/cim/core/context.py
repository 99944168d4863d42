"""The request context that services read without passing it around: the current request id."""

import uuid
from contextvars import ContextVar

_request_id: ContextVar[str] = ContextVar("cim_request_id", default="")


def request_id() -> str:
    """The id of the request or command being served; a new one per CLI command."""
    value = _request_id.get()
    if not value:
        value = uuid.uuid4().hex
        _request_id.set(value)
    return value


def set_request_id(value: str) -> None:
    _request_id.set(value)
