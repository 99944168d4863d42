"""Field-level masking: what a user sees of each sensitive field, applied in one place for every output.

The PI registry says which fields are sensitive and how each is masked (MaskKind); roles.FIELD_ACCESS says, per
role and kind, who sees a field unmasked and who may edit it. Pages, the API, exports, search results and the
merge view all pass the customers they show through `mask_customers` (model instances) or `FieldPolicy.mask`
(plain values), so no output shows what another hides. A masked instance is display-only: saving it raises.
"""

import contextlib
import datetime
import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from django.db.models import Model
from django.db.models.signals import pre_save

from cim.accounts.roles import FieldAccess, Perm, field_access, has_perm
from cim.privacy.registry import MaskKind, PersonalField, sensitive_fields

STARS = "****"


@lru_cache(maxsize=65536)
def mask_phone(value: str) -> str:
    """`+8613812345678` → `+86 138****5678`: the country code, the first three digits and the last four."""
    value = str(value).strip()
    prefix, national = "", re.sub(r"\D", "", value)
    if value.startswith("+"):
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None:
            prefix, national = f"+{parsed.country_code} ", str(parsed.national_number)
    if len(national) < 7:
        return prefix + "*" * max(len(national) - 2, 2) + national[-2:] if len(national) > 2 else prefix + STARS
    return f"{prefix}{national[:3]}{'*' * (len(national) - 7)}{national[-4:]}"


def mask_email(value: str) -> str:
    """`zhangsan@qq.com` → `z***@qq.com`: the first character and the domain."""
    local, at, domain = str(value).rpartition("@")
    if not at:
        return STARS
    return f"{local[:1]}***@{domain}"


def mask_id_number(value: str) -> str:
    """`110101199003071234` → `110101********1234`: the region code and the last four characters."""
    value = str(value)
    if len(value) <= 10:
        return "*" * len(value)
    return f"{value[:6]}{'*' * (len(value) - 10)}{value[-4:]}"


def mask_address(value: str) -> str:
    """The street line is hidden whole; province, city and district are separate fields and stay visible."""
    return STARS


def mask_date(value) -> str:
    """A birthday without its year: `****-05-17` (the month and day still serve birthday greetings)."""
    if isinstance(value, datetime.date):
        return f"****-{value:%m-%d}"
    text = str(value)
    return f"****{text[4:]}" if re.match(r"^\d{4}-\d{2}-\d{2}$", text) else STARS


def mask_text(value) -> str:
    return STARS


MASKERS = {
    MaskKind.PHONE: mask_phone,
    MaskKind.EMAIL: mask_email,
    MaskKind.ID_NUMBER: mask_id_number,
    MaskKind.ADDRESS: mask_address,
    MaskKind.DATE: mask_date,
    MaskKind.TEXT: mask_text,
}


def mask_value(kind: str, value):
    """The masked form of `value` (empty values stay empty: that a field is blank is not a secret)."""
    if value in (None, ""):
        return value
    return MASKERS.get(kind, mask_text)(value)


def field_key(entry: PersonalField) -> str:
    """How a sensitive field is named in the API and the audit: `phone.number`, `customer.birthday`."""
    return f"{entry.model.split('.', 1)[1]}.{entry.field}"


def reveal_fields() -> dict[str, PersonalField]:
    """Every sensitive field by its key, from the registry (a new sensitive field is revealable at once)."""
    return {field_key(f): f for f in sensitive_fields()}


class FieldPolicy:
    """What one user may see and edit of each kind of sensitive field, for a customer owned by `owner_id`."""

    def __init__(self, user):
        self.user = user
        self.role = getattr(user, "role", "")
        self.can_change = has_perm(user, Perm.CUSTOMER_CHANGE)
        self.can_reveal = has_perm(user, Perm.CUSTOMER_REVEAL)

    def shows(self, kind: str, owner_id: int | None) -> bool:
        access = field_access(self.role, kind)
        if access == FieldAccess.OWN:
            return owner_id is not None and owner_id == self.user.pk
        return access in (FieldAccess.VIEW, FieldAccess.EDIT)

    def may_edit(self, kind: str, owner_id: int | None) -> bool:
        if not self.can_change:
            return False
        access = field_access(self.role, kind)
        if access == FieldAccess.OWN:
            return owner_id is not None and owner_id == self.user.pk
        return access == FieldAccess.EDIT

    def mask(self, kind: str, value, owner_id: int | None):
        """`value` as this user may see it."""
        return value if self.shows(kind, owner_id) else mask_value(kind, value)

    def shows_all(self, owner_id: int | None = None) -> bool:
        kinds = {f.mask for f in sensitive_fields()}
        return all(self.shows(kind, owner_id) for kind in kinds)


def field_policy(user) -> FieldPolicy:
    """The user's policy, built once per user object (a request's user lives for the request)."""
    policy = getattr(user, "_cim_field_policy", None)
    if policy is None or policy.role != getattr(user, "role", ""):
        policy = FieldPolicy(user)
        with contextlib.suppress(AttributeError):  # AnonymousUser and similar
            user._cim_field_policy = policy
    return policy


def _mask_instance(obj: Model, policy: FieldPolicy, owner_id: int | None) -> list[str]:
    """Mask `obj`'s sensitive fields in place; the keys of the fields masked."""
    masked = []
    for entry in sensitive_fields(obj._meta.label_lower):
        if policy.shows(entry.mask, owner_id):
            continue
        value = getattr(obj, entry.field, None)
        if value in (None, ""):
            continue
        if obj.__dict__.get("_cim_masked") and entry.field in obj.__dict__.get("_cim_masked_fields", ()):
            continue  # already masked (a contact shared by two prefetch lists)
        setattr(obj, entry.field, mask_value(entry.mask, value))
        masked.append(entry.field)
    if masked:
        obj._cim_masked = True
        obj._cim_masked_fields = {*getattr(obj, "_cim_masked_fields", ()), *masked}
    return [f"{obj._meta.model_name}.{name}" for name in masked]


def _related_instances(customer: Model) -> Iterable[Model]:
    """The contact points already loaded on a customer: prefetched managers and `to_attr` lists."""
    cache = getattr(customer, "_prefetched_objects_cache", {})
    for related in cache.values():
        yield from getattr(related, "_result_cache", None) or related
    for value in vars(customer).values():
        if isinstance(value, list):
            yield from (item for item in value if isinstance(item, Model))


def mask_customers(user, customers: Iterable[Model]):
    """Mask, in place and for display only, what `user` may not see of these customers and of their loaded
    contact points. Sets `customer.masked_fields` (keys like `phone.number`) for the reveal buttons. Call it on
    instances nothing will save: a masked instance refuses to be saved. Returns `customers`."""
    policy = field_policy(user)
    for customer in customers:
        owner_id = customer.owner_id
        masked = set(_mask_instance(customer, policy, owner_id))
        for item in _related_instances(customer):
            if not sensitive_fields(item._meta.label_lower):
                continue
            masked.update(_mask_instance(item, policy, owner_id))
        customer.masked_fields = masked | getattr(customer, "masked_fields", set())
        customer.masked_keys = {key.replace(".", "-") for key in customer.masked_fields}
    return customers


def mask_customer(user, customer: Model) -> Model:
    mask_customers(user, [customer])
    return customer


class MaskedInstanceSaved(RuntimeError):
    """A masked, display-only instance was about to overwrite the real values."""


def _refuse_masked(sender, instance, **kwargs):
    if instance.__dict__.get("_cim_masked"):
        raise MaskedInstanceSaved(f"{sender._meta.label} {instance.pk} is masked for display and cannot be saved.")


def connect_guard() -> None:
    from django.apps import apps

    for label in {f.model for f in sensitive_fields()}:
        pre_save.connect(_refuse_masked, sender=apps.get_model(label), dispatch_uid=f"cim-mask-guard-{label}")
