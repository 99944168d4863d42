"""The one filter definition of the audit log: the audit page, its export and the API read it (DESIGN §3.5)."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone
from ninja import Schema
from pydantic import Field, field_validator


class AuditFilter(Schema):
    """Filters of the audit log. `action` ending in `.` matches a family (`auth.` = every login event)."""

    at_from: datetime | None = Field(None, description="From this time (inclusive); without a zone: server time")
    at_to: datetime | None = Field(None, description="Until this time (exclusive)")
    actor: str | None = Field(None, max_length=150, description="Username of who acted; `-` for the system")
    action: str | None = Field(None, max_length=60, description="Action, e.g. `customer.update`, or a prefix `auth.`")
    target_type: str | None = Field(None, max_length=60, description="e.g. `customers.customer`")
    target_id: str | None = Field(None, max_length=40)
    request_id: str | None = Field(None, max_length=64)

    @field_validator("at_from", "at_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and timezone.is_naive(value):
            return timezone.make_aware(value)
        return value

    def apply(self, queryset: QuerySet) -> QuerySet:
        condition = Q()
        if self.at_from:
            condition &= Q(at__gte=self.at_from)
        if self.at_to:
            condition &= Q(at__lt=self.at_to)
        if self.actor == "-":
            condition &= Q(actor__isnull=True)
        elif self.actor:
            condition &= Q(actor__username=self.actor)
        if self.action:
            condition &= Q(action__startswith=self.action) if self.action.endswith(".") else Q(action=self.action)
        for name in ("target_type", "target_id", "request_id"):
            if value := getattr(self, name):
                condition &= Q(**{name: value})
        return queryset.filter(condition)

    def describe(self) -> str:
        """The filters that are set, for the note of an export's audit event (ids and names, no values)."""
        return " ".join(f"{k}={v.isoformat() if isinstance(v, datetime) else v}" for k, v in self if v)
