from django.db.models import Prefetch, QuerySet

from cim.audit.models import AuditEvent, FieldChange


def history_for(*, target_type: str, target_id, limit: int = 100) -> QuerySet[AuditEvent]:
    """The newest audit events of one object, with their field changes."""
    return (
        AuditEvent.objects.filter(target_type=target_type, target_id=str(target_id))
        .select_related("actor")
        .prefetch_related(Prefetch("changes", queryset=FieldChange.objects.order_by("id")))[:limit]
    )
