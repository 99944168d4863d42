"""The PI registry: which fields hold personal information, and which of it is sensitive.

Every feature that reads or removes personal data (masking, encryption at rest, exports, data-subject requests,
erasure, webhooks) asks this registry, so a new field cannot escape them: a test fails for any field of a
personal-data model that is neither registered here nor listed as not personal.

Two levels:
- PERSONAL: identifies or describes a person (names, gender, job title). Shown to roles that see the customer.
- SENSITIVE: masked for roles without the right to see it, encrypted at rest, never a plaintext key. This is
  CIM's protected set (phone, email, ID number, address, birthday); `art28` marks the subset that is sensitive
  personal information under PIPL Art. 28 (specific identity, whereabouts), for which separate consent
  (单独同意) is needed. All personal information of a minor under 14 is sensitive under Art. 28 too.
"""

import datetime
from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _

MINOR_AGE = 14


class Level(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    SENSITIVE = "sensitive", _("Sensitive")


class MaskKind(models.TextChoices):
    """How a value is shown to a role that may not see it: `138****5678`, `z***@qq.com`."""

    PHONE = "phone", _("Phone number")
    EMAIL = "email", _("Email address")
    ID_NUMBER = "id_number", _("ID number")
    ADDRESS = "address", _("Address")
    DATE = "date", _("Date")
    NAME = "name", _("Name")
    TEXT = "text", _("Text")


@dataclass(frozen=True)
class PersonalField:
    model: str  # app_label.model_name
    field: str
    level: str
    mask: str
    art28: bool = False

    @property
    def sensitive(self) -> bool:
        return self.level == Level.SENSITIVE


_P, _S = Level.PERSONAL, Level.SENSITIVE

REGISTRY: tuple[PersonalField, ...] = (
    PersonalField("customers.customer", "display_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "match_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "family_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "given_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "alias", _P, MaskKind.NAME),
    PersonalField("customers.customer", "english_name", _P, MaskKind.NAME),
    PersonalField("customers.customer", "gender", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "job_title", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "notes", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "custom_fields", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "birthday", _S, MaskKind.DATE),
    PersonalField("customers.customer", "id_number", _S, MaskKind.ID_NUMBER, art28=True),
    # The birthday's year and month, kept in plaintext so birthday months and age ranges stay queries
    # (docs/encryption.md): personal, not sensitive; erasure clears them with the birthday.
    PersonalField("customers.customer", "birth_year", _P, MaskKind.TEXT),
    PersonalField("customers.customer", "birth_month", _P, MaskKind.TEXT),
    PersonalField("customers.phone", "number", _S, MaskKind.PHONE),
    PersonalField("customers.phone", "raw", _S, MaskKind.PHONE),
    PersonalField("customers.email", "address", _S, MaskKind.EMAIL),
    PersonalField("customers.email", "raw", _S, MaskKind.EMAIL),
    PersonalField("customers.address", "street", _S, MaskKind.ADDRESS, art28=True),
    PersonalField("customers.address", "postal_code", _P, MaskKind.TEXT),
)

# Fields of the models above that are not personal: keys, codes, choices about the relationship, bookkeeping.
NOT_PERSONAL: dict[str, frozenset[str]] = {
    "customers.customer": frozenset(
        {
            "id",
            "number",
            "kind",
            "company",
            "uscc",
            "industry",
            "company_size",
            "customer_type",
            "source_channel",
            "value_tier",
            "region",
            "lifecycle_stage",
            "status",
            "owner",
            "team",
            "tags",
            "created_at",
            "updated_at",
            "created_by",
            "reviewed_at",
            "merged_into",
            # A keyed hash of the ID number, like the contacts' match keys.
            "id_number_key",
        }
    ),
    "customers.phone": frozenset({"id", "customer", "kind", "is_primary", "is_verified", "created_at", "match_key"}),
    "customers.email": frozenset({"id", "customer", "kind", "is_primary", "is_verified", "created_at", "match_key"}),
    "customers.address": frozenset(
        {"id", "customer", "kind", "is_primary", "is_verified", "created_at", "country", "province", "city"}
        | {"district", "adcode"}
    ),
}

_BY_KEY = {(f.model, f.field): f for f in REGISTRY}


def personal_fields(model: str | None = None, *, level: str | None = None) -> list[PersonalField]:
    """The registered fields, of one model (`"customers.phone"`) and/or one level, in registry order."""
    return [f for f in REGISTRY if (model is None or f.model == model) and (level is None or f.level == level)]


def sensitive_fields(model: str | None = None) -> list[PersonalField]:
    return personal_fields(model, level=Level.SENSITIVE)


def field_info(model: str, field: str) -> PersonalField | None:
    """The registry's entry for a field, or None when the field is not personal."""
    return _BY_KEY.get((model, field))


def is_minor(birthday: datetime.date | None, *, today: datetime.date | None = None) -> bool:
    """Under 14 on `today` (PIPL Art. 28, 31): every piece of their information is sensitive."""
    if birthday is None:
        return False
    today = today or datetime.date.today()
    age = today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))
    return age < MINOR_AGE
