"""The privacy registers: security incidents, cross-border transfers and impact assessments (create and edit)."""

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.audit.services import audit_record
from cim.customers.services import _require
from cim.privacy.models import BreachIncident, CrossBorderTransfer, ImpactAssessment

REGISTERS: dict[str, type[models.Model]] = {
    "breaches": BreachIncident,
    "transfers": CrossBorderTransfer,
    "assessments": ImpactAssessment,
}


def _check_yearly_counts(value) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k.isdigit() and len(k) == 4 and isinstance(v, int) and v >= 0 for k, v in value.items()
    ):
        raise ValidationError(
            {"yearly_counts": [_('Enter counts per year, such as {"2026": 1200}, as whole numbers.')]}
        )


def register_save(*, instance: models.Model, data: dict, actor) -> models.Model:
    """Create or change a register entry; every changed field is audited by name (values may describe people)."""
    _require(actor, Perm.PRIVACY_MANAGE)
    if isinstance(instance, CrossBorderTransfer) and "yearly_counts" in data:
        _check_yearly_counts(data["yearly_counts"])
    # full_clean passes an empty value in a field that may be blank, None too, which the column then refuses.
    nulls = {
        name: [field.error_messages["null"]]
        for name, value in data.items()
        if value is None and not (field := instance._meta.get_field(name)).null
    }
    if nulls:
        raise ValidationError(nulls)
    created = instance.pk is None
    changed = [name for name, value in data.items() if getattr(instance, name) != value]
    for name, value in data.items():
        setattr(instance, name, value)
    instance.full_clean()
    if not created and not changed:
        return instance
    with transaction.atomic():
        instance.save()
        audit_record(
            actor=actor,
            action=f"privacy.{instance._meta.model_name}_{'create' if created else 'update'}",
            target=instance,
            fields=changed,
        )
    return instance
