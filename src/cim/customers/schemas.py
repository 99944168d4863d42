"""The typed shape of customer data, shared by the API, the pages and the importers."""

from datetime import date, datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import BaseModel, BeforeValidator, Field

from cim.customers import choices as c
from cim.quality.normalize import parse_birthday

# Inputs are plain pydantic models: ninja's Schema also reads ORM objects, through a wrapper that costs more than
# the validation itself on bulk paths (25 µs a row). Outputs, read from models, stay Schemas.

# The largest id a 64-bit column holds; larger numbers would overflow the database driver, not just miss.
MAX_ID = 2**63 - 1
# The id of a row, as a request names it.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _written_date(value):
    """Dates as people write them too (1990/3/15, 1990年3月15日, 19900315), through the one rule for birthdays."""
    if isinstance(value, str) and value.strip():
        parsed = parse_birthday(value)
        if parsed is None:
            raise ValueError("Enter a date like 1990-03-15 or 1990年3月15日.")
        return parsed
    return value or None


class PhoneIn(BaseModel):
    number: str = Field(max_length=64)
    kind: c.PhoneType = c.PhoneType.MOBILE
    is_primary: bool = False
    is_verified: bool = False


class EmailIn(BaseModel):
    address: str = Field(max_length=254)
    kind: c.EmailType = c.EmailType.PERSONAL
    is_primary: bool = False
    is_verified: bool = False


class AddressIn(BaseModel):
    kind: c.AddressType = c.AddressType.HOME
    country: str = Field("CN", max_length=2)
    province: str = Field("", max_length=50)
    city: str = Field("", max_length=50)
    district: str = Field("", max_length=50)
    street: str = Field("", max_length=200)
    postal_code: str = Field("", max_length=12)
    is_primary: bool = False
    is_verified: bool = False


class CustomerInput(BaseModel):
    """Fields of a customer as a caller sends them. On update only the fields sent are changed."""

    kind: c.Kind = c.Kind.PERSON
    display_name: str = Field("", max_length=200)
    family_name: str = Field("", max_length=100)
    given_name: str = Field("", max_length=100)
    alias: str = Field("", max_length=200)
    english_name: str = Field("", max_length=200)
    gender: c.Gender = c.Gender.UNKNOWN
    birthday: Annotated[date | None, BeforeValidator(_written_date)] = None
    keeps_lunar_birthday: bool = False
    company: str = Field("", max_length=200)
    job_title: str = Field("", max_length=100)
    uscc: str = Field("", max_length=30)
    id_number: str = Field("", max_length=30)
    industry: c.Industry | None = None
    company_size: c.CompanySize | None = None
    customer_type: c.CustomerType | None = None
    source_channel: c.SourceChannel | None = None
    value_tier: c.ValueTier | None = None
    region: c.Region | None = None
    lifecycle_stage: c.LifecycleStage = c.LifecycleStage.POTENTIAL
    status: c.Status = c.Status.ACTIVE
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    notes: str = Field("", max_length=10_000)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=50)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    emails: list[EmailIn] = Field(default_factory=list, max_length=20)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=20)


class PhoneOut(Schema):
    number: str
    raw: str
    kind: str
    is_primary: bool
    is_verified: bool


class EmailOut(Schema):
    address: str
    raw: str
    kind: str
    is_primary: bool
    is_verified: bool


class AddressOut(Schema):
    kind: str
    country: str
    province: str
    city: str
    district: str
    street: str
    postal_code: str
    adcode: str
    is_primary: bool
    is_verified: bool


class TagOut(Schema):
    id: int
    name: str
    color: str
    description: str


class CustomerOut(Schema):
    number: str
    kind: str
    display_name: str
    family_name: str
    given_name: str
    alias: str
    english_name: str
    gender: str
    birthday: date | str | None = Field(description="YYYY-MM-DD, or `****-MM-DD` when masked for the caller's role")
    keeps_lunar_birthday: bool
    company: str
    job_title: str
    uscc: str
    id_number: str
    industry: str
    company_size: str
    customer_type: str
    source_channel: str
    value_tier: str
    region: str
    lifecycle_stage: str
    status: str
    owner_id: int | None
    team_id: int | None
    notes: str
    custom_fields: dict[str, Any]
    tags: list[str]
    phones: list[PhoneOut]
    emails: list[EmailOut]
    addresses: list[AddressOut]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return [t.name for t in obj.tags.all()]


class CustomerListOut(Schema):
    """A row of the customer list: the profile with the primary phone and email."""

    number: str
    kind: str
    display_name: str
    company: str
    customer_type: str
    source_channel: str
    value_tier: str
    region: str
    industry: str
    lifecycle_stage: str
    status: str
    owner_id: int | None
    team_id: int | None
    tags: list[str]
    primary_phone: str | None
    primary_email: str | None
    created_at: datetime
    updated_at: datetime

    # Rows come from `customer_list`, which prefetches these lists.
    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return [t.name for t in obj.tag_list]

    @staticmethod
    def resolve_primary_phone(obj) -> str | None:
        return next((p.number for p in obj.primary_phones), None)

    @staticmethod
    def resolve_primary_email(obj) -> str | None:
        return next((e.address for e in obj.primary_emails), None)
