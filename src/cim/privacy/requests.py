"""Data-subject requests (PIPL Art. 44–50, GDPR Art. 15–22): the register, its deadlines and workflow, and the
access / portability package of everything the PI registry lists about a customer."""

import csv
import datetime
import io
import json

from dateutil.relativedelta import relativedelta
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import FileField, ForeignKey
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.audit.services import audit_record
from cim.customers.models import Customer
from cim.customers.services import _require
from cim.privacy.erasure import _with_merged, customer_erase
from cim.privacy.models import (
    ConsentPurpose,
    DataSubjectRequest,
    IdentityMethod,
    IdentityStatus,
    Law,
    RequestKind,
    RequestStatus,
)
from cim.privacy.registry import CUSTOMER_DATA
from cim.privacy.selectors import consent_holds
from cim.privacy.services import consent_record, restriction_set

PIPL_DAYS = 30  # GB/T 35273-2020 §8.7: answer within 30 days (or the time a law sets)


def request_due_at(*, law: str, received_at: datetime.datetime) -> datetime.datetime:
    """PIPL: 30 days (GB/T 35273). GDPR Art. 12(3): one calendar month, to the same day of the next month or its
    last day when it has none (31 January → 28 February), as the EDPB reads Regulation 1182/71."""
    if law == Law.GDPR:
        return received_at + relativedelta(months=1)
    return received_at + datetime.timedelta(days=PIPL_DAYS)


# From each status, where a request may go next.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    RequestStatus.RECEIVED: (RequestStatus.VERIFIED, RequestStatus.REJECTED),
    RequestStatus.VERIFIED: (RequestStatus.IN_PROGRESS, RequestStatus.COMPLETED, RequestStatus.REJECTED),
    RequestStatus.IN_PROGRESS: (RequestStatus.COMPLETED, RequestStatus.REJECTED),
    RequestStatus.COMPLETED: (),
    RequestStatus.REJECTED: (),
}


def request_create(
    *,
    customer: Customer | None,
    kind: str,
    law: str = Law.PIPL,
    received_at: datetime.datetime | None = None,
    channel: str = "",
    details: str = "",
    handler=None,
    actor,
) -> DataSubjectRequest:
    _require(actor, Perm.PRIVACY_MANAGE)
    errors = {}
    if kind not in RequestKind.values:
        errors["kind"] = [_("Select a valid kind of request.")]
    if law not in Law.values:
        errors["law"] = [_("Select PIPL or GDPR.")]
    if customer is None and kind != RequestKind.ACCESS:
        errors["customer"] = [_("Name the customer the request is about.")]
    received_at = received_at or timezone.now()
    if received_at > timezone.now() + datetime.timedelta(minutes=5):
        errors["received_at"] = [_("The request cannot have been received in the future.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        request = DataSubjectRequest.objects.create(
            customer=customer,
            kind=kind,
            law=law,
            received_at=received_at,
            due_at=request_due_at(law=law, received_at=received_at),
            channel=channel,
            details=details,
            handler=handler or (actor if actor is not None and actor.is_authenticated else None),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_record(actor=actor, action="privacy.request_create", target=request, fields=["kind", "law", "due_at"])
    return request


def _move(request: DataSubjectRequest, to: str) -> None:
    if to not in TRANSITIONS[request.status]:
        raise ValidationError(
            {
                "status": [
                    _("A request that is “%(from)s” cannot become “%(to)s”.")
                    % {"from": request.get_status_display(), "to": RequestStatus(to).label}
                ]
            }
        )


def request_verify(*, request: DataSubjectRequest, method: str, actor) -> DataSubjectRequest:
    """Record that the requester's identity was checked, and how (PIPL Art. 50: verify before acting)."""
    _require(actor, Perm.PRIVACY_MANAGE)
    _move(request, RequestStatus.VERIFIED)
    if method not in IdentityMethod.values or not method:
        raise ValidationError({"identity_method": [_("Say how the identity was checked.")]})
    with transaction.atomic():
        request.identity_status = IdentityStatus.VERIFIED
        request.identity_method = method
        request.status = RequestStatus.VERIFIED
        request.save(update_fields=["identity_status", "identity_method", "status"])
        audit_record(actor=actor, action="privacy.request_verify", target=request, fields=["identity_method"])
    return request


def request_start(*, request: DataSubjectRequest, actor) -> DataSubjectRequest:
    _require(actor, Perm.PRIVACY_MANAGE)
    _move(request, RequestStatus.IN_PROGRESS)
    with transaction.atomic():
        request.status = RequestStatus.IN_PROGRESS
        if request.handler_id is None and actor is not None:
            request.handler = actor
        request.save(update_fields=["status", "handler"])
        audit_record(actor=actor, action="privacy.request_start", target=request, fields=["status"])
    return request


def request_reject(*, request: DataSubjectRequest, reason: str, actor) -> DataSubjectRequest:
    _require(actor, Perm.PRIVACY_MANAGE)
    _move(request, RequestStatus.REJECTED)
    if not reason.strip():
        raise ValidationError({"reason": [_("Give the reason for rejecting the request: the requester is told.")]})
    with transaction.atomic():
        request.status = RequestStatus.REJECTED
        request.rejection_reason = reason.strip()[:500]
        if request.identity_status == IdentityStatus.PENDING and "identity" in reason.lower():
            request.identity_status = IdentityStatus.FAILED
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "rejection_reason", "identity_status", "completed_at"])
        audit_record(actor=actor, action="privacy.request_reject", target=request, fields=["rejection_reason"])
    return request


def request_complete(*, request: DataSubjectRequest, actor, note: str = "") -> DataSubjectRequest:
    """Close a request, doing what its kind asks: erase, restrict, or withdraw every consent the customer holds.
    Access, portability and rectification are done by hand (the package, the customer's edit page) before."""
    _require(actor, Perm.PRIVACY_MANAGE)
    _move(request, RequestStatus.COMPLETED)
    if request.identity_status != IdentityStatus.VERIFIED:
        raise ValidationError({"identity_status": [_("Verify the requester's identity first.")]})
    customer = request.customer
    with transaction.atomic():
        if request.kind == RequestKind.ERASURE:
            customer_erase(customer=customer, actor=actor, reason=note or request.reference, request=request)
        elif request.kind == RequestKind.RESTRICTION:
            restriction_set(customer=customer, actor=actor, request=request)
        elif request.kind == RequestKind.WITHDRAWAL:
            for purpose in ConsentPurpose.values:
                if consent_holds([customer.pk], purpose):
                    consent_record(
                        customer=customer,
                        purpose=purpose,
                        text=_("Withdrawn by request %(reference)s") % {"reference": request.reference},
                        text_version=request.reference,
                        granted=False,
                        actor=actor,
                    )
        request.status = RequestStatus.COMPLETED
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "completed_at"])
        audit_record(actor=actor, action="privacy.request_complete", target=request, fields=["status"], note=note)
    return request


# --- the access / portability package


def _row(model, values: dict) -> dict:
    out = {}
    for field in model._meta.concrete_fields:
        if isinstance(field, ForeignKey) and field.related_model._meta.label_lower in {"accounts.user"}:
            continue  # staff are not the customer's data
        value = values.get(field.attname)
        if isinstance(field, FileField):
            value = str(value or "").rsplit("/", 1)[-1]
        out[field.name] = value
    return out


def customer_package(*, customer: Customer) -> dict:
    """Everything the registry lists about a customer (and records merged into them): {model: [rows]}."""
    ids = _with_merged([customer.pk])
    data: dict[str, list[dict]] = {}
    for entry in CUSTOMER_DATA:
        if not entry.export:
            continue
        model = apps.get_model(entry.model)
        rows = model._default_manager.filter(**{f"{entry.customer_path}__in": ids}).order_by("pk").values()
        data[entry.model] = [_row(model, r) for r in rows]
    return {
        "customer": customer.number,
        "generated_at": timezone.now(),
        "data": data,
    }


def package_json(package: dict) -> bytes:
    return json.dumps(package, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2).encode()


def package_csv(package: dict) -> bytes:
    """One CSV in long form (table, record id, field, value): every table in one machine-readable file."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["table", "id", "field", "value"])
    for table, rows in package["data"].items():
        for row in rows:
            pk = row.get("id", row.get("customer", ""))
            for field, value in row.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)
                writer.writerow([table, pk, field, "" if value is None else value])
    return ("\ufeff" + out.getvalue()).encode()  # BOM: Excel opens UTF-8 Chinese correctly


def package_download(*, request: DataSubjectRequest, fmt: str, actor) -> tuple[bytes, str, str]:
    """The package of a request's customer as (content, content type, file name); the download is audited."""
    _require(actor, Perm.PRIVACY_MANAGE)
    if request.customer is None:
        raise ValidationError({"customer": [_("The request names no customer.")]})
    if request.kind not in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        raise ValidationError({"kind": [_("Only access and portability requests have a package.")]})
    if request.identity_status != IdentityStatus.VERIFIED:
        raise ValidationError({"identity_status": [_("Verify the requester's identity first.")]})
    if fmt not in ("json", "csv"):
        raise ValidationError({"format": [_("Select json or csv.")]})
    package = customer_package(customer=request.customer)
    audit_record(
        actor=actor, action="privacy.package_download", target=request, fields=["package"], note=f"format {fmt}"
    )
    name = f"{request.reference}-{request.customer.number}.{fmt}"
    if fmt == "json":
        return package_json(package), "application/json", name
    return package_csv(package), "text/csv; charset=utf-8", name
