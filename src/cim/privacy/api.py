"""The privacy API: the consent ledger, data-subject requests and their packages, erasure, retention rules and the
registers (security incidents, cross-border transfers, impact assessments)."""

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from cim.accounts.roles import Perm, has_perm
from cim.customers.selectors import customer_get
from cim.customers.services import PermissionDenied
from cim.privacy import registers as reg
from cim.privacy import requests as dsr
from cim.privacy.erasure import customer_erase
from cim.privacy.models import (
    BreachIncident,
    ConsentPurpose,
    CrossBorderTransfer,
    DataSubjectRequest,
    IdentityMethod,
    ImpactAssessment,
    Law,
    RequestKind,
    RequestStatus,
    RetentionRule,
)
from cim.privacy.retention import retention_rule_apply, retention_rule_count, retention_rule_save
from cim.privacy.selectors import consent_ledger, consent_state, is_restricted, request_list
from cim.privacy.services import consent_record, restriction_lift

router = Router(tags=["privacy"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


# --- consent


class ConsentOut(Schema):
    id: int
    purpose: str
    granted: bool
    text_version: str
    text_sha256: str
    channel: str
    language: str
    at: datetime.datetime


class PurposeStateOut(Schema):
    purpose: str
    label: str
    granted: bool | None = Field(description="The latest row: true consented, false withdrawn, null never asked")
    at: datetime.datetime | None


class ConsentsOut(Schema):
    restricted: bool
    current: list[PurposeStateOut]
    ledger: list[ConsentOut]


class ConsentIn(Schema):
    purpose: ConsentPurpose
    granted: bool = True
    text: str = Field(min_length=1, max_length=20_000, description="The notice exactly as shown")
    text_version: str = Field(min_length=1, max_length=30)
    language: str = Field("", max_length=10)
    channel: str = Field("", max_length=20)


def _consents(customer) -> dict:
    return {
        "restricted": is_restricted(customer),
        "current": [
            {
                "purpose": s["purpose"],
                "label": str(s["label"]),
                "granted": s["row"].granted if s["row"] else None,
                "at": s["row"].at if s["row"] else None,
            }
            for s in consent_state(customer=customer)
        ],
        "ledger": list(consent_ledger(customer=customer)),
    }


@router.get("/customers/{number}/consents", response=ConsentsOut, summary="A customer's consents: now, and the ledger")
def consents(request, number: str):
    _require(request, Perm.CUSTOMER_VIEW)
    return _consents(customer_get(user=request.auth, number=number))


@router.post("/customers/{number}/consents", response={201: ConsentsOut}, summary="Record a consent or a withdrawal")
def consent_add(request, number: str, payload: ConsentIn):
    _require(request, Perm.CUSTOMER_CHANGE)
    customer = customer_get(user=request.auth, number=number)
    consent_record(customer=customer, actor=request.auth, **payload.model_dump())
    return Status(201, _consents(customer))


class EraseIn(Schema):
    reason: str = Field(min_length=1, max_length=400)
    confirm: str = Field(description="The customer number again, to confirm")
    request_id: int | None = None


class EraseOut(Schema):
    number: str
    erased_at: datetime.datetime


@router.post("/customers/{number}/erase", response=EraseOut, summary="Erase a customer's personal data (irreversible)")
def erase(request, number: str, payload: EraseIn):
    _require(request, Perm.PRIVACY_MANAGE)
    customer = customer_get(user=request.auth, number=number)
    if payload.confirm.strip() != customer.number:
        raise ValidationError({"confirm": [_("Type the customer number to confirm.")]})
    data_request = get_object_or_404(DataSubjectRequest, pk=payload.request_id) if payload.request_id else None
    tombstone = customer_erase(customer=customer, actor=request.auth, reason=payload.reason, request=data_request)
    return {"number": tombstone.number, "erased_at": tombstone.erased_at}


@router.delete("/customers/{number}/restriction", response={204: None}, summary="Lift a processing restriction")
def unrestrict(request, number: str):
    _require(request, Perm.PRIVACY_MANAGE)
    restriction_lift(customer=customer_get(user=request.auth, number=number), actor=request.auth)
    return Status(204, None)


# --- data-subject requests


class RequestOut(Schema):
    id: int
    reference: str
    customer: str | None
    kind: RequestKind
    law: Law
    received_at: datetime.datetime
    due_at: datetime.datetime
    overdue: bool
    channel: str
    details: str
    identity_status: str
    identity_method: str
    status: RequestStatus
    rejection_reason: str
    handler: str | None
    completed_at: datetime.datetime | None

    @staticmethod
    def resolve_customer(obj) -> str | None:
        return obj.customer.number if obj.customer_id else None

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return obj.is_overdue

    @staticmethod
    def resolve_handler(obj) -> str | None:
        return obj.handler.username if obj.handler_id else None


class RequestIn(Schema):
    customer: str | None = Field(None, description="Customer number")
    kind: RequestKind
    law: Law = Law.PIPL
    received_at: datetime.datetime | None = None
    channel: str = Field("", max_length=20)
    details: str = Field("", max_length=5000)


class TransitionIn(Schema):
    action: str = Field(description="verify | start | complete | reject")
    identity_method: IdentityMethod | None = None
    reason: str = Field("", max_length=500)
    note: str = Field("", max_length=400)


@router.get("/privacy/requests", response=list[RequestOut], summary="The register of data-subject requests")
def requests_list(request, status: str = "", overdue: bool = False):
    _require(request, Perm.PRIVACY_MANAGE)
    return list(request_list(status=status, overdue=overdue)[:500])


@router.post("/privacy/requests", response={201: RequestOut}, summary="Record a data-subject request")
def requests_create(request, payload: RequestIn):
    _require(request, Perm.PRIVACY_MANAGE)
    customer = customer_get(user=request.auth, number=payload.customer) if payload.customer else None
    data = payload.model_dump(exclude={"customer"})
    return Status(201, dsr.request_create(customer=customer, actor=request.auth, **data))


@router.get("/privacy/requests/{request_id}", response=RequestOut)
def requests_read(request, request_id: int):
    _require(request, Perm.PRIVACY_MANAGE)
    return get_object_or_404(DataSubjectRequest.objects.select_related("customer", "handler"), pk=request_id)


@router.post("/privacy/requests/{request_id}/transition", response=RequestOut, summary="Move a request on")
def requests_transition(request, request_id: int, payload: TransitionIn):
    _require(request, Perm.PRIVACY_MANAGE)
    data_request = get_object_or_404(DataSubjectRequest, pk=request_id)
    if payload.action == "verify":
        return dsr.request_verify(request=data_request, method=payload.identity_method or "", actor=request.auth)
    if payload.action == "start":
        return dsr.request_start(request=data_request, actor=request.auth)
    if payload.action == "complete":
        return dsr.request_complete(request=data_request, actor=request.auth, note=payload.note)
    if payload.action == "reject":
        return dsr.request_reject(request=data_request, reason=payload.reason, actor=request.auth)
    raise ValidationError({"action": [_("Select one of: verify, start, complete, reject.")]})


@router.get("/privacy/requests/{request_id}/package", summary="The customer's data as JSON or CSV (audited)")
def requests_package(request, request_id: int, format: str = "json"):
    _require(request, Perm.PRIVACY_MANAGE)
    data_request = get_object_or_404(DataSubjectRequest.objects.select_related("customer"), pk=request_id)
    content, content_type, name = dsr.package_download(request=data_request, fmt=format, actor=request.auth)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- retention


class RuleOut(Schema):
    id: int
    name: str
    action: RetentionRule.Action
    days: int
    enabled: bool
    last_run_at: datetime.datetime | None
    last_run_count: int


class RuleIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    action: RetentionRule.Action
    days: int = Field(ge=1, le=36500)
    enabled: bool = True


class RulePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    days: int | None = Field(None, ge=1, le=36500)
    enabled: bool | None = None


class CountOut(Schema):
    count: int


@router.get("/privacy/retention-rules", response=list[RuleOut])
def rules_list(request):
    _require(request, Perm.PRIVACY_MANAGE)
    return list(RetentionRule.objects.all())


@router.post("/privacy/retention-rules", response={201: RuleOut})
def rules_create(request, payload: RuleIn):
    _require(request, Perm.PRIVACY_MANAGE)
    return Status(201, retention_rule_save(data=payload.model_dump(), actor=request.auth))


@router.patch("/privacy/retention-rules/{rule_id}", response=RuleOut)
def rules_update(request, rule_id: int, payload: RulePatch):
    _require(request, Perm.PRIVACY_MANAGE)
    rule = get_object_or_404(RetentionRule, pk=rule_id)
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return retention_rule_save(rule=rule, data=data, actor=request.auth)


@router.get(
    "/privacy/retention-rules/{rule_id}/dry-run", response=CountOut, summary="How many rows the rule would touch"
)
def rules_dry_run(request, rule_id: int):
    _require(request, Perm.PRIVACY_MANAGE)
    return {"count": retention_rule_count(rule=get_object_or_404(RetentionRule, pk=rule_id))}


@router.post("/privacy/retention-rules/{rule_id}/apply", response=CountOut, summary="Apply the rule now")
def rules_apply(request, rule_id: int):
    _require(request, Perm.PRIVACY_MANAGE)
    return {"count": retention_rule_apply(rule=get_object_or_404(RetentionRule, pk=rule_id), actor=request.auth)}


# --- registers


class BreachIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    detected_at: datetime.datetime
    nature: str = Field(min_length=1, max_length=10_000)
    data_categories: str = Field(min_length=1, max_length=500)
    subject_categories: str = Field("", max_length=500)
    approx_subjects: int = Field(0, ge=0)
    consequences: str = Field("", max_length=10_000)
    measures: str = Field("", max_length=10_000)
    authority_notified_at: datetime.datetime | None = None
    subjects_notified_at: datetime.datetime | None = None
    closed_at: datetime.datetime | None = None


class BreachOut(BreachIn):
    id: int
    authority_due_at: datetime.datetime
    overdue: bool

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return obj.is_overdue


class TransferIn(Schema):
    recipient: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=1, max_length=100)
    purpose: str = Field(min_length=1, max_length=300)
    legal_basis: CrossBorderTransfer.Basis
    data_categories: str = Field(min_length=1, max_length=500)
    sensitive: bool = False
    yearly_counts: dict[str, int] = Field(default_factory=dict, description='Individuals per year: {"2026": 1200}')
    started_on: datetime.date | None = None
    ended_on: datetime.date | None = None
    notes: str = Field("", max_length=10_000)


class TransferOut(TransferIn):
    id: int


class AssessmentIn(Schema):
    subject: str = Field(min_length=1, max_length=200)
    assessed_on: datetime.date
    processing: str = Field("", max_length=10_000)
    risks: str = Field(min_length=1, max_length=20_000)
    measures: str = Field(min_length=1, max_length=20_000)
    conclusion: ImpactAssessment.Conclusion
    review_on: datetime.date | None = None


class AssessmentOut(AssessmentIn):
    id: int


def _patch(schema):
    """The same fields with their checks, each one optional: for PATCH. Null is taken only where the field
    takes it (a missing field is left as it is; a null one would be written)."""
    fields = {
        name: (info.annotation, FieldInfo.merge_field_infos(info, default=None, default_factory=None))
        for name, info in schema.model_fields.items()
    }
    return create_model(f"{schema.__name__}Patch", __base__=Schema, **fields)


def _register_routes(path: str, model, schema_in, schema_out) -> None:
    schema_patch = _patch(schema_in)

    @router.get(f"/privacy/{path}", response=list[schema_out], operation_id=f"privacy_{path}_list")
    def listing(request):
        _require(request, Perm.PRIVACY_MANAGE)
        return list(model.objects.all())

    @router.post(f"/privacy/{path}", response={201: schema_out}, operation_id=f"privacy_{path}_create")
    def create(request, payload: schema_in):
        _require(request, Perm.PRIVACY_MANAGE)
        return Status(201, reg.register_save(instance=model(), data=payload.model_dump(), actor=request.auth))

    @router.get(f"/privacy/{path}/{{entry_id}}", response=schema_out, operation_id=f"privacy_{path}_read")
    def read(request, entry_id: int):
        _require(request, Perm.PRIVACY_MANAGE)
        return get_object_or_404(model, pk=entry_id)

    @router.patch(f"/privacy/{path}/{{entry_id}}", response=schema_out, operation_id=f"privacy_{path}_update")
    def update(request, entry_id: int, payload: schema_patch):
        _require(request, Perm.PRIVACY_MANAGE)
        entry = get_object_or_404(model, pk=entry_id)
        data: dict[str, Any] = payload.model_dump(exclude_unset=True)
        return reg.register_save(instance=entry, data=data, actor=request.auth)


_register_routes("breaches", BreachIncident, BreachIn, BreachOut)
_register_routes("transfers", CrossBorderTransfer, TransferIn, TransferOut)
_register_routes("assessments", ImpactAssessment, AssessmentIn, AssessmentOut)
