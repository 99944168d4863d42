"""The customer's own change history (edits, tags, stage, archive, merges) as read by people: on the timeline."""

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Prefetch, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy

from cim.accounts.models import Team, User
from cim.activities.timeline import Cursor, TimelineEntry, older_than, timeline_source
from cim.audit.models import AuditEvent, FieldChange
from cim.customers.models import Customer
from cim.privacy.masking import mask_value
from cim.privacy.registry import MaskKind, field_info

ACTION_LABELS = {
    "customer.create": gettext_lazy("Created"),
    "customer.update": gettext_lazy("Edited"),
    "customer.archive": gettext_lazy("Archived"),
    "customer.restore": gettext_lazy("Restored"),
    "customer.tag": gettext_lazy("Tags changed"),
    "customer.review": gettext_lazy("Reviewed"),
    "customer.merge": gettext_lazy("Merged other customers into this one"),
    "customer.merged_into": gettext_lazy("Merged into another customer"),
    "customer.unmerge": gettext_lazy("Merge undone"),
    "customer.lifecycle": gettext_lazy("Lifecycle stage changed"),
    "customer.reveal": gettext_lazy("Masked data revealed"),
}
PEOPLE_FIELDS = {"owner_id": User, "team_id": Team}


def field_label(name: str) -> str:
    """The model's label of a customer field named in filters, errors or the change history."""
    try:
        model_field = Customer._meta.get_field(name.removesuffix("_id"))
    except FieldDoesNotExist:
        return name
    verbose = getattr(model_field, "verbose_name", None)
    return capfirst(verbose or model_field.related_model._meta.verbose_name_plural)


# The contact lists the change history records as "a, b", and how each item is masked there.
CONTACT_MASKS = {"phones": MaskKind.PHONE, "emails": MaskKind.EMAIL, "addresses": MaskKind.TEXT}


def _value_display(name: str, value: str, names: dict) -> str:
    if value == "":
        return "—"
    # Past values of sensitive fields are shown masked to every role: the history is read by roles that may not
    # see them, and the current values can be revealed (audited) where the policy allows.
    if name in CONTACT_MASKS:
        return ", ".join(mask_value(CONTACT_MASKS[name], item) for item in value.split(", "))
    info = field_info("customers.customer", name)
    if info is not None and info.sensitive:
        return mask_value(info.mask, value)
    if name in PEOPLE_FIELDS:
        return names.get((name, value), f"#{value}")
    try:
        model_field = Customer._meta.get_field(name)
    except FieldDoesNotExist:
        return value
    choices = getattr(model_field, "choices", None)
    return str(dict(choices).get(value, value)) if choices else value


@timeline_source(
    "change",
    gettext_lazy("Changes and merges"),
    rows=lambda customer_id: AuditEvent.objects.filter(target_type="customers.customer", target_id=str(customer_id)),
)
def change_entries(*, rows: QuerySet[AuditEvent], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    """The customer's audit events with readable field names and values (owner and team by name)."""
    events = list(
        rows.filter(older_than(before, "change", at="at"))
        .select_related("actor")
        .prefetch_related(Prefetch("changes", queryset=FieldChange.objects.order_by("id")))
        .order_by("-at", "-id")[:limit]
    )
    ids: dict[str, set] = {name: set() for name in PEOPLE_FIELDS}
    for event in events:
        for change in event.changes.all():
            if change.field in ids:
                ids[change.field].update(v for v in (change.old_value, change.new_value) if v.isdigit())
    names = {
        (name, str(row.pk)): str(row)
        for name, model in PEOPLE_FIELDS.items()
        for row in model.objects.filter(pk__in=ids[name])
    }
    entries = []
    for event in events:
        changed = {ch.field for ch in event.changes.all()}
        entries.append(
            TimelineEntry(
                at=event.at,
                kind="change",
                key=event.pk,
                title=str(ACTION_LABELS.get(event.action, event.action)),
                detail=", ".join(str(field_label(f)) for f in event.fields if f not in changed),
                actor=str(event.actor) if event.actor else "",
                changes=[
                    (
                        str(field_label(ch.field)),
                        _value_display(ch.field, ch.old_value, names),
                        _value_display(ch.field, ch.new_value, names),
                    )
                    for ch in event.changes.all()
                ],
                note=event.note,
            )
        )
    return entries
