from django.db.models import Prefetch, QuerySet

from cim.audit.filters import AuditFilter
from cim.audit.models import AuditEvent, FieldChange


def history_for(*, target_type: str, target_id, limit: int = 100) -> QuerySet[AuditEvent]:
    """The newest audit events of one object, with their field changes."""
    return (
        AuditEvent.objects.filter(target_type=target_type, target_id=str(target_id))
        .select_related("actor")
        .prefetch_related(Prefetch("changes", queryset=FieldChange.objects.order_by("id")))[:limit]
    )


def audit_event_list(*, filters: AuditFilter) -> QuerySet[AuditEvent]:
    """The audit log, newest first (by its place in the chain), for the audit page, its export and the API.
    Only for users with audit.view: the caller checks."""
    return filters.apply(AuditEvent.objects.all()).select_related("actor").order_by("-seq")
