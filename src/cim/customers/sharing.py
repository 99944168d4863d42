"""Every write of shares (信息共享): a customer, a static list or a segment shared with another team or a whole
department, read-only or editable, for a reason and until an end date; revoked by the sharer or an administrator.

Who may share what, and why:
- Perm.CUSTOMER_SHARE, and only what the sharer's own scope holds: a customer shared with you is not yours to pass
  on (`Customer.objects.in_scope_of`).
- A list or segment can hold any customer, so only roles that see every customer may share one; others share
  customers one by one.
- Edit access needs a sharer whose role may change customers; the recipient's role decides what they can do with it.
"""

import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import Team
from cim.accounts.roles import Perm, Role, Scope, has_perm, scope_of
from cim.audit.services import audit_record, audit_record_bulk
from cim.customers.models import Customer, Share
from cim.customers.services import PermissionDenied
from cim.customers.sharing_selectors import shares_active
from cim.quality.normalize import clean_text
from cim.segments.models import Segment

# An end date is required: a share nobody remembers should not last for ever. Pages and the CLI propose
# DEFAULT_DAYS; nothing may run longer than MAX_DAYS without being shared again.
DEFAULT_DAYS = 30
MAX_DAYS = 365


def default_until() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=DEFAULT_DAYS)


def _end_of(day: datetime.date) -> datetime.datetime:
    """A share "until" a day lasts through that day, in the installation's time zone."""
    return timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


def _note(share: Share) -> str:
    # Language-neutral and free of personal data: ids, the team's name, the access and the last day.
    department = "+" if share.include_subteams else ""
    return f"share {share.pk} → {share.team.name}{department} {share.access} ≤ {share.last_day.isoformat()}"


def _check_terms(*, actor, team, access: str, reason: str, until, errors: dict) -> tuple[str, datetime.date]:
    """The terms every share needs (team, access, reason, end date), errors added per field; the cleaned reason
    and the last day."""
    if team is None:
        errors["team"] = [_("Choose the team to share with.")]
    if access not in Share.Access.values:
        errors["access"] = [_("Choose read or edit access.")]
    elif access == Share.Access.EDIT and not has_perm(actor, Perm.CUSTOMER_CHANGE):
        errors["access"] = [_("Your role may not change customers, so it cannot share them for editing.")]
    reason = clean_text(reason)
    if not 1 <= len(reason) <= 500:
        errors["reason"] = [_("Say why you share, in 1 to 500 characters.")]
    today = timezone.localdate()
    until = until or default_until()
    if not today <= until <= today + datetime.timedelta(days=MAX_DAYS):
        errors["until"] = [_("Choose a day from today to %(n)s days ahead.") % {"n": MAX_DAYS}]
    return reason, until


def share_create(
    *,
    actor,
    team: Team | None,
    reason: str,
    until: datetime.date | None = None,
    access: str = Share.Access.READ,
    include_subteams: bool = False,
    customer: Customer | None = None,
    segment: Segment | None = None,
) -> Share:
    """Share a customer, or a list or segment with its members while the share lasts, with a team (and the teams
    under it with `include_subteams`), until the end of `until` (DEFAULT_DAYS from today when not given)."""
    if not has_perm(actor, Perm.CUSTOMER_SHARE):
        raise PermissionDenied(Perm.CUSTOMER_SHARE)
    errors: dict[str, list[str]] = {}
    if (customer is None) == (segment is None):
        errors["customer"] = [_("Share either one customer or one list or segment.")]
    elif customer is not None and not Customer.objects.in_scope_of(actor).filter(pk=customer.pk).exists():
        errors["customer"] = [
            _("Only customers your own scope holds can be shared; one shared with you cannot be passed on.")
        ]
    elif segment is not None and scope_of(actor) != Scope.ALL:
        errors["segment"] = [
            _("A list or segment can hold customers outside your scope; share its customers one by one instead.")
        ]
    reason, until = _check_terms(actor=actor, team=team, access=access, reason=reason, until=until, errors=errors)
    if not errors and shares_active().filter(team=team, customer=customer, segment=segment).exists():
        errors["team"] = [_("Already shared with this team; revoke that share first to change it.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        share = Share.objects.create(
            customer=customer,
            segment=segment,
            team=team,
            include_subteams=include_subteams,
            access=access,
            reason=reason,
            expires_at=_end_of(until),
            shared_by=actor,
        )
        subject = customer if customer is not None else segment
        audit_record(actor=actor, action=f"{subject._meta.model_name}.share", target=subject, note=_note(share))
    return share


def customers_share(
    *,
    actor,
    customer_ids: Iterable[int],
    team: Team | None,
    reason: str,
    until: datetime.date | None = None,
    access: str = Share.Access.READ,
    include_subteams: bool = False,
) -> int:
    """Share many customers (the rows ticked in the list) with a team on the same terms, set-based: those outside
    the actor's own scope and those already shared with the team are passed over. Returns how many were shared."""
    if not has_perm(actor, Perm.CUSTOMER_SHARE):
        raise PermissionDenied(Perm.CUSTOMER_SHARE)
    errors: dict[str, list[str]] = {}
    reason, until = _check_terms(actor=actor, team=team, access=access, reason=reason, until=until, errors=errors)
    if errors:
        raise ValidationError(errors)
    ids = set(Customer.objects.in_scope_of(actor).filter(pk__in=list(customer_ids)).values_list("pk", flat=True))
    ids -= set(shares_active().filter(team=team, customer_id__in=ids).values_list("customer_id", flat=True))
    if not ids:
        return 0
    with transaction.atomic():
        shares = Share.objects.bulk_create(
            Share(
                customer_id=pk,
                team=team,
                include_subteams=include_subteams,
                access=access,
                reason=reason,
                expires_at=_end_of(until),
                shared_by=actor,
            )
            for pk in sorted(ids)
        )
        department = "+" if include_subteams else ""
        audit_record_bulk(
            actor=actor,
            action="customer.share",
            target_type="customers.customer",
            target_ids=sorted(ids),
            note=f"→ {team.name}{department} {access} ≤ {until.isoformat()}",
        )
    return len(shares)


def share_revoke(*, share: Share, actor) -> Share:
    """End a share now; by the person who made it or an administrator. Revoking twice changes nothing."""
    allowed = (
        actor is not None and actor.is_active and (share.shared_by_id == actor.pk or actor.role == Role.ADMINISTRATOR)
    )
    if not allowed:
        raise PermissionDenied(Perm.CUSTOMER_SHARE)
    if share.revoked_at is not None:
        return share
    with transaction.atomic():
        share.revoked_at = timezone.now()
        share.revoked_by = actor
        share.save(update_fields=["revoked_at", "revoked_by"])
        subject = share.customer if share.customer_id else share.segment
        audit_record(actor=actor, action=f"{subject._meta.model_name}.unshare", target=subject, note=_note(share))
    return share
