"""The audit API: the log with the audit page's filters, and verification of the chain. Needs audit.view."""

from datetime import datetime

from ninja import Field, Query, Router, Schema

from cim.accounts.roles import Perm, has_perm
from cim.audit.filters import AuditFilter
from cim.audit.reports import audit_verify
from cim.audit.selectors import audit_event_list
from cim.core.pagination import keyset_page
from cim.customers.services import PermissionDenied

router = Router(tags=["audit"])


def _require_auditor(request) -> None:
    if not has_perm(request.auth, Perm.AUDIT_VIEW):
        raise PermissionDenied(Perm.AUDIT_VIEW)


class AuditEventOut(Schema):
    id: int
    seq: int
    at: datetime
    actor: str | None = Field(None, validation_alias="actor.username")
    action: str
    target_type: str
    target_id: str
    fields: list[str]
    request_id: str
    note: str
    chain: str


class AuditEventPage(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class VerificationOut(Schema):
    ok: bool
    checked: int = Field(description="Events verified before the first problem (all of them when ok)")
    last_seq: int
    problem: str = Field(description="empty when ok; else changed, deleted, reordered, truncated or head")
    seq: int | None = Field(description="The first broken event's place in the chain")
    event_id: int | None
    message: str


@router.get("/audit/events", response=AuditEventPage, summary="List audit events, newest first")
def list_events(request, filters: Query[AuditFilter], cursor: str | None = None, limit: int = Query(50, ge=1, le=500)):
    _require_auditor(request)
    items, next_cursor = keyset_page(audit_event_list(filters=filters), cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/audit/verify", response=VerificationOut, summary="Verify the audit log's HMAC chain")
def verify(request):
    """Recomputes every link; `ok: false` names the first changed, deleted or moved event. The check is recorded."""
    _require_auditor(request)
    return audit_verify(actor=request.auth).as_dict()
