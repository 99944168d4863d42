import json
import re
from collections.abc import Iterator

from django.utils.translation import gettext as _
from ninja.errors import ValidationError
from ninja.parser import Parser

# NUL and unpaired surrogates: JSON and URLs can carry them, PostgreSQL and UTF-8 cannot store them.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class UnstorableText(Exception):
    """Text in a request that no database column can hold; `errors` name where, as pydantic does."""

    def __init__(self, errors: list[dict]):
        super().__init__(errors)
        self.errors = errors


def _unstorable(value, path: tuple) -> Iterator[tuple]:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                yield (*path, key)
            yield from _unstorable(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, (*path, index))


def unstorable_errors(value, where: str) -> list[dict]:
    message = _("This text holds a character that cannot be stored (NUL or an unpaired surrogate).")
    return [{"loc": loc, "type": "string_unstorable", "msg": message} for loc in _unstorable(value, (where,))]


class JSONObjectParser(Parser):
    """Request bodies are JSON objects; `[1, 2]` or `null` is refused instead of read as an empty body. Text that
    cannot be stored is refused by field, in the body and the query, before anything reads it."""

    def parse_body(self, request):
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("the request body is not a JSON object")
        if errors := unstorable_errors(data, "body"):
            raise UnstorableText(errors)
        return data

    def parse_querydict(self, data, list_fields, request):
        result = super().parse_querydict(data, list_fields, request)
        if errors := unstorable_errors(result, "query"):
            raise ValidationError(errors)
        return result
