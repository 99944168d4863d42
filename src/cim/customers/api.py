"""The customers REST API: validates input and calls services and selectors, never writes itself."""

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Schema
from ninja.responses import Status
from pydantic import BaseModel, Field

from cim.accounts.roles import Perm, has_perm
from cim.core.api_errors import error_body
from cim.core.pagination import keyset_page
from cim.customers import configuration
from cim.customers.choices import CustomFieldType
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, CustomFieldDefinition, Tag
from cim.customers.numbering import is_valid_number, normalize_number
from cim.customers.schemas import MAX_ID, CustomerInput, CustomerListOut, CustomerOut, TagOut
from cim.customers.selectors import customer_get, customer_list
from cim.customers.services import (
    DuplicatesFound,
    PermissionDenied,
    customer_archive,
    customer_create,
    customer_restore,
    customer_reveal,
    customer_update,
    customers_tag,
)
from cim.privacy.masking import mask_customer, mask_customers
from cim.quality.api import DuplicateOut

router = Router(tags=["customers"])


def _require(request, perm: str) -> None:
    if not has_perm(request.auth, perm):
        raise PermissionDenied(perm)


def _as_written(request, customer: Customer) -> Customer:
    """The customer after a write. One the caller just handed to another owner or team may now be outside their
    scope: the write succeeded, so answer with it rather than a 404 that invites a retry (and a duplicate)."""
    try:
        written = customer_get(user=request.auth, number=customer.number)
    except Http404:
        written = Customer.objects.prefetch_related("tags", "phones", "emails", "addresses").get(pk=customer.pk)
    return mask_customer(request.auth, written)


class CustomerPage(Schema):
    items: list[CustomerListOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ArchiveIn(Schema):
    reason: str = Field("", max_length=500)


class BulkTagIn(Schema):
    numbers: list[str] = Field(min_length=1, max_length=1000)
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)


class BulkTagOut(Schema):
    changed: int


class TagIn(Schema):
    name: str = Field(min_length=1, max_length=50)
    color: str = Field("#6c757d", pattern=r"^#[0-9a-fA-F]{6}$")
    description: str = Field("", max_length=200)


class TagPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=50)
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")
    description: str | None = Field(None, max_length=200)


class CustomFieldIn(Schema):
    key: str = Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_]*$")
    label_zh: str = Field(min_length=1, max_length=100)
    label_en: str = Field(min_length=1, max_length=100)
    field_type: CustomFieldType
    choices: list[str] = Field(default_factory=list, max_length=200)
    required: bool = False
    position: int = Field(0, ge=0, le=32767)


class CustomFieldPatch(Schema):
    label_zh: str | None = Field(None, min_length=1, max_length=100)
    label_en: str | None = Field(None, min_length=1, max_length=100)
    choices: list[str] | None = Field(None, max_length=200)
    required: bool | None = None
    position: int | None = Field(None, ge=0, le=32767)
    is_active: bool | None = None


class CustomFieldOut(Schema):
    key: str
    label_zh: str
    label_en: str
    field_type: str
    choices: list[str]
    required: bool
    position: int
    is_active: bool


@router.get("/customers", response=CustomerPage, summary="List and search customers")
def list_customers(
    request, filters: Query[CustomerFilter], cursor: str | None = None, limit: int = Query(50, ge=1, le=500)
):
    _require(request, Perm.CUSTOMER_VIEW)
    items, next_cursor = keyset_page(customer_list(user=request.auth, filters=filters), cursor=cursor, limit=limit)
    return {"items": mask_customers(request.auth, items), "next_cursor": next_cursor}


class CustomerCreatedOut(CustomerOut):
    possible_duplicates: list[DuplicateOut] = Field(
        description="Customers the matching model finds likely to be the same person; recorded for review"
    )


@router.post("/customers", response={201: CustomerCreatedOut, 409: dict}, summary="Create a customer")
def create_customer(
    request,
    payload: CustomerInput,
    strict: bool = Query(False, description="Refuse (409, `possible_duplicates`) when likely duplicates exist"),
):
    _require(request, Perm.CUSTOMER_CHANGE)
    try:
        customer = customer_create(data=payload, actor=request.auth, strict=strict, channel="api")
    except DuplicatesFound as found:
        # Customers outside the caller's scope are counted, never named.
        visible = _visible_ids(request, found.duplicates)
        details = [
            {"field": "", "code": "possible_duplicate", "message": d.customer.number, "probability": d.probability}
            if d.customer.pk in visible
            else {"field": "", "code": "possible_duplicate_out_of_scope", "message": "", "probability": d.probability}
            for d in found.duplicates
        ]
        message = _("Likely duplicates exist; create without strict mode to keep both.")
        return Status(409, error_body("possible_duplicates", message, details))
    written = _as_written(request, customer)
    visible = _visible_ids(request, customer.possible_duplicates)
    written.possible_duplicates = [d for d in customer.possible_duplicates if d.customer.pk in visible]
    return Status(201, written)


def _visible_ids(request, duplicates: list) -> set[int]:
    ids = [d.customer.pk for d in duplicates]
    if not ids:  # most new customers have no likely duplicate
        return set()
    return set(Customer.objects.visible_to(request.auth).filter(pk__in=ids).values_list("pk", flat=True))


# Before `/customers/{number}`: Django tries URL patterns in order, and `bulk-tag` would be taken for a number.
@router.post("/customers/bulk-tag", response=BulkTagOut, summary="Add and remove tags on many customers")
def bulk_tag(request, payload: BulkTagIn):
    _require(request, Perm.CUSTOMER_TAG)
    numbers = [n for n in map(normalize_number, payload.numbers) if is_valid_number(n)]
    # Customers shared with the caller's team read-only are left as they are.
    ids = Customer.objects.visible_to(request.auth, action="change").filter(number__in=numbers)
    changed = customers_tag(
        customer_ids=ids.values_list("pk", flat=True), add=payload.add, remove=payload.remove, actor=request.auth
    )
    return {"changed": changed}


@router.get("/customers/{number}", response=CustomerOut, summary="Read a customer by number")
def read_customer(request, number: str):
    _require(request, Perm.CUSTOMER_VIEW)
    return mask_customer(request.auth, customer_get(user=request.auth, number=number))


@router.patch("/customers/{number}", response=CustomerOut, summary="Change the fields sent")
def update_customer(request, number: str, payload: CustomerInput):
    _require(request, Perm.CUSTOMER_CHANGE)
    customer = customer_get(user=request.auth, number=number, for_change=True)
    customer_update(customer=customer, data=payload, actor=request.auth)
    return _as_written(request, customer)


@router.post("/customers/{number}/archive", response=CustomerOut, summary="Archive a customer")
def archive_customer(request, number: str, payload: ArchiveIn):
    _require(request, Perm.CUSTOMER_ARCHIVE)
    customer = customer_get(user=request.auth, number=number, for_change=True)
    customer_archive(customer=customer, actor=request.auth, reason=payload.reason)
    return mask_customer(request.auth, customer_get(user=request.auth, number=number))


@router.post("/customers/{number}/restore", response=CustomerOut, summary="Restore an archived customer")
def restore_customer(request, number: str):
    _require(request, Perm.CUSTOMER_ARCHIVE)
    customer = customer_get(user=request.auth, number=number, for_change=True)
    customer_restore(customer=customer, actor=request.auth)
    return mask_customer(request.auth, customer_get(user=request.auth, number=number))


class RevealIn(BaseModel):
    fields: list[str] = Field(
        min_length=1, max_length=20, description="Sensitive fields to reveal: `phone.number`, `customer.birthday`, …"
    )


class RevealOut(Schema):
    values: dict[str, list[Any]] = Field(description="Each field's unmasked values (a contact field lists them all)")


@router.post("/customers/{number}/reveal", response=RevealOut, summary="Reveal masked fields (audited)")
def reveal_customer(request, number: str, payload: RevealIn):
    _require(request, Perm.CUSTOMER_REVEAL)
    customer = customer_get(user=request.auth, number=number)
    return {"values": customer_reveal(customer=customer, fields=payload.fields, actor=request.auth)}


@router.get("/tags", response=list[TagOut], tags=["settings"], summary="List tags")
def list_tags(request):
    _require(request, Perm.CUSTOMER_VIEW)
    return Tag.objects.all()


@router.post("/tags", response={201: TagOut}, tags=["settings"], summary="Create a tag")
def create_tag(request, payload: TagIn):
    return Status(201, configuration.tag_create(actor=request.auth, **payload.model_dump()))


@router.patch("/tags/{tag_id}", response=TagOut, tags=["settings"], summary="Change a tag")
def update_tag(request, payload: TagPatch, tag_id: int = Path(..., ge=1, le=MAX_ID)):
    tag = get_object_or_404(Tag, pk=tag_id)
    return configuration.tag_update(tag=tag, actor=request.auth, **payload.model_dump(exclude_unset=True))


@router.get("/custom-fields", response=list[CustomFieldOut], tags=["settings"], summary="List custom fields")
def list_custom_fields(request):
    _require(request, Perm.CUSTOMER_VIEW)
    return CustomFieldDefinition.objects.all()


@router.post("/custom-fields", response={201: CustomFieldOut}, tags=["settings"], summary="Define a custom field")
def create_custom_field(request, payload: CustomFieldIn):
    return Status(201, configuration.custom_field_create(actor=request.auth, **payload.model_dump()))


@router.patch("/custom-fields/{key}", response=CustomFieldOut, tags=["settings"], summary="Change a custom field")
def update_custom_field(
    request, payload: CustomFieldPatch, key: str = Path(..., max_length=50, pattern=r"^[a-z][a-z0-9_]*$")
):
    definition = get_object_or_404(CustomFieldDefinition, key=key)
    return configuration.custom_field_update(
        definition=definition, actor=request.auth, **payload.model_dump(exclude_unset=True)
    )
