"""Every write to the consent ledger, and the checks that features processing personal data call first."""

import hashlib
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cim.accounts.roles import Perm
from cim.audit.services import audit_record
from cim.automation.events import event_publish
from cim.customers.services import _require
from cim.privacy.models import Consent, ConsentPurpose, ProcessingRestriction
from cim.privacy.selectors import consent_holds, restricted_ids


def notice_sha256(text: str) -> str:
    """The SHA-256 of a notice as shown (UTF-8): which text a consent was given to."""
    return hashlib.sha256(text.encode()).hexdigest()


def consent_record(
    *,
    customer,
    purpose: str,
    text: str,
    text_version: str,
    language: str = "",
    channel: str = "",
    ip: str | None = None,
    user_agent: str = "",
    submission=None,
    granted: bool = True,
    actor,
) -> Consent:
    """Append one consent (or its withdrawal, `granted=False`) to the ledger, with the text as it was shown.

    Rows are never edited: a withdrawal is a new row, and the latest row per purpose is the customer's state."""
    if purpose not in ConsentPurpose.values:
        raise ValidationError({"purpose": [_("Select a valid purpose.")]})
    with transaction.atomic():
        consent = Consent.objects.create(
            customer=customer,
            purpose=purpose,
            text=text,
            text_sha256=notice_sha256(text),
            text_version=text_version[: Consent._meta.get_field("text_version").max_length],
            language=language,
            granted=granted,
            channel=channel,
            ip=ip,
            user_agent=user_agent[: Consent._meta.get_field("user_agent").max_length],
            submission=submission,
        )
        audit_record(
            actor=actor,
            action="consent.grant" if granted else "consent.withdraw",
            target=consent,
            fields=["purpose", "text_version", "channel"],
            note=f"customer {customer.pk}, {purpose} {text_version}",
        )
        event_publish("consent.changed", customer_id=customer.pk, data={"purpose": purpose, "granted": granted})
    return consent


class ConsentRequired(ValidationError):
    """Some customers have not consented to a purpose (or withdrew it), or their processing is restricted."""

    def __init__(self, message: str, *, missing: set[int]):
        super().__init__({"customers": [message]}, code="consent_required")
        self.missing = missing


def consent_required(*, customer_ids: Iterable[int], purpose: str) -> set[int]:
    """What a feature calls before it markets to, shares or sends abroad the data of these customers: returns
    their ids when every one of them consents to `purpose` and none is restricted; raises ConsentRequired
    naming how many do not. Set-based: one query per 10,000 customers."""
    ids = set(customer_ids)
    allowed = consent_holds(ids, purpose) - restricted_ids(ids)
    missing = ids - allowed
    if missing:
        label = ConsentPurpose(purpose).label
        raise ConsentRequired(
            ngettext(
                "%(count)d of %(total)d customers has not consented to “%(purpose)s”, has withdrawn it or is "
                "restricted.",
                "%(count)d of %(total)d customers have not consented to “%(purpose)s”, have withdrawn it or are "
                "restricted.",
                len(missing),
            )
            % {"count": len(missing), "total": len(ids), "purpose": label},
            missing=missing,
        )
    return allowed


class RestrictedProcessing(ValidationError):
    """The customer's processing is restricted: only storage is allowed."""

    def __init__(self):
        super().__init__(
            {"": [_("This customer's data is restricted at their request: it may be stored but not changed or used.")]},
            code="restricted",
        )


def restriction_check(customer_id: int) -> None:
    """Raise RestrictedProcessing when the customer's processing is restricted: every service that changes or
    uses a customer's data (edits, marketing, sharing) calls this."""
    if ProcessingRestriction.objects.filter(customer_id=customer_id).exists():
        raise RestrictedProcessing()


def restriction_set(*, customer, actor, request=None) -> ProcessingRestriction:
    """Restrict the processing of a customer's data to storage (PIPL Art. 44, GDPR Art. 18)."""
    _require(actor, Perm.PRIVACY_MANAGE)
    with transaction.atomic():
        restriction, created = ProcessingRestriction.objects.get_or_create(
            customer=customer, defaults={"request": request, "created_by": actor}
        )
        if created:
            audit_record(actor=actor, action="privacy.restrict", target=customer, fields=["restriction"])
    return restriction


def restriction_lift(*, customer, actor) -> bool:
    _require(actor, Perm.PRIVACY_MANAGE)
    with transaction.atomic():
        deleted, _rows = ProcessingRestriction.objects.filter(customer=customer).delete()
        if deleted:
            audit_record(actor=actor, action="privacy.unrestrict", target=customer, fields=["restriction"])
    return bool(deleted)
