"""Keyset (cursor) pagination: stable under inserts and as fast on page 1,000 as on page 1."""

import base64
import binascii
import json
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from ninja.errors import HttpError


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, cls=DjangoJSONEncoder).encode()).decode().rstrip("=")


def _decode(cursor: str, fields: list[str], queryset: QuerySet) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(fields):
            raise ValueError
        model = queryset.model
        return [
            datetime.fromisoformat(v) if model._meta.get_field(f).get_internal_type() == "DateTimeField" else v
            for f, v in zip(fields, values, strict=True)
        ]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise HttpError(400, _("The cursor is not valid; start again without it.")) from None


def keyset_page(queryset: QuerySet, *, cursor: str | None, limit: int) -> tuple[list, str | None]:
    """One page of an ordered queryset (its ordering must end in a unique field) and the next page's cursor."""
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
