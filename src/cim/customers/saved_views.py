"""Writes to saved views of the customer list: a user's named filters, private or shared."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.audit.services import audit_record
from cim.customers.models import SavedView
from cim.customers.services import PermissionDenied, _require
from cim.quality.normalize import clean_text


def saved_view_save(*, user, name: str, query: str, is_shared: bool = False) -> SavedView:
    """Save the list's filters under `name`; saving again under the same name replaces them."""
    _require(user, Perm.CUSTOMER_VIEW)
    name = clean_text(name)
    if not name or len(name) > 100:
        raise ValidationError({"name": [_("A name has 1 to 100 characters.")]})
    if len(query) > 2000:
        raise ValidationError({"query": [_("These filters are too long to save.")]})
    with transaction.atomic():
        view, created = SavedView.objects.get_or_create(
            user=user, name=name, defaults={"query": query, "is_shared": is_shared}
        )
        changes = {}
        if not created:
            changes = {
                k: (getattr(view, k), v)
                for k, v in (("query", query), ("is_shared", is_shared))
                if getattr(view, k) != v
            }
            if not changes:
                return view
            view.query, view.is_shared = query, is_shared
            view.save(update_fields=["query", "is_shared"])
        audit_record(
            actor=user,
            action="saved_view.create" if created else "saved_view.update",
            target=view,
            fields=["name", "query", "is_shared"],
            changes=changes,
        )
    return view


def saved_view_delete(*, saved_view: SavedView, actor) -> None:
    """Delete a saved view; only its owner may."""
    if actor is None or saved_view.user_id != actor.pk:
        raise PermissionDenied("saved_view.delete")
    with transaction.atomic():
        audit_record(actor=actor, action="saved_view.delete", target=saved_view)
        saved_view.delete()
