"""Every write to the consent ledger."""

from django.db import transaction

from cim.audit.services import audit_record
from cim.privacy.models import Consent


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
    """Append one consent (or its withdrawal, `granted=False`) to the ledger, with the text as it was shown."""
    with transaction.atomic():
        consent = Consent.objects.create(
            customer=customer,
            purpose=purpose,
            text=text,
            text_version=text_version,
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
    return consent
