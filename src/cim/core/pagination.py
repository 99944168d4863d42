"""Keyset (cursor) pagination: stable under inserts and as fast on page 1,000 as on page 1."""

import base64
import binascii
import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from ninja.errors import HttpError


class _CursorEncoder(DjangoJSONEncoder):
    def default(self, o):
        # DjangoJSONEncoder cuts datetimes to milliseconds; a cursor needs every microsecond or rows are lost.
        if isinstance(o, datetime):
            return o.isoformat()
        return super().default(o)


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, cls=_CursorEncoder).encode()).decode().rstrip("=")


def _decode_value(field, value):
    # Cursors come from callers: only the scalar types an encoded cursor holds, and nothing a database refuses.
    if isinstance(value, bool) or not isinstance(value, str | int) or "\x00" in str(value):
        raise ValueError
    if field.get_internal_type() == "DateTimeField":
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromisoformat(value)
    value = field.to_python(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError
    return value


def _field(queryset: QuerySet, name: str):
    annotation = queryset.query.annotations.get(name)
    return annotation.output_field if annotation is not None else queryset.model._meta.get_field(name)


def _decode(cursor: str, fields: list[str], queryset: QuerySet) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(fields):
            raise ValueError
        return [_decode_value(_field(queryset, f), v) for f, v in zip(fields, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, ValidationError):
        raise HttpError(400, _("The cursor is not valid; start again without it.")) from None


def keyset_page(queryset: QuerySet, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """One page of an ordered queryset (its ordering must end in a unique field or annotation) and the next
    page's cursor."""
    ordering = [str(o) for o in queryset.query.order_by]
    fields = [o.lstrip("-") for o in ordering]
    if cursor:
        values = _decode(cursor, fields, queryset)
        after = Q()
        for i, (order, field) in enumerate(zip(ordering, fields, strict=True)):
            step = Q(**{f"{field}__{'lt' if order.startswith('-') else 'gt'}": values[i]})
            for prior, value in zip(fields[:i], values[:i], strict=True):
                step &= Q(**{prior: value})
            after |= step
        queryset = queryset.filter(after)
    items = list(queryset[: limit + 1])
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    return items, _encode([getattr(items[-1], f) for f in fields])
