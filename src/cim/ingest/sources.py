"""Event sources and their write keys. A key is shown once, when made; only its SHA-256 and prefix are stored."""

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm, has_perm
from cim.audit.services import audit_record
from cim.customers.choices import SourceChannel
from cim.customers.services import PermissionDenied
from cim.ingest.models import EventSource
from cim.quality.normalize import clean_text

PREFIX_LENGTH = 8


def write_key_hash(write_key: str) -> str:
    return hashlib.sha256(write_key.encode()).hexdigest()


def event_source_create(*, name: str, source_channel: str = "", actor) -> tuple[EventSource, str]:
    """A new source and its write key (returned once). Raises ValidationError with per-field messages."""
    if actor is not None and not has_perm(actor, Perm.SETTINGS_MANAGE):
        raise PermissionDenied(Perm.SETTINGS_MANAGE)
    name = clean_text(name)
    errors = {}
    if not name or len(name) > EventSource._meta.get_field("name").max_length:
        errors["name"] = [_("Enter a name of 1 to 100 characters.")]
    elif EventSource.objects.filter(name=name).exists():
        errors["name"] = [_("An event source with this name already exists.")]
    if source_channel and source_channel not in SourceChannel.values:
        errors["source_channel"] = [_("Select one of: %(choices)s.") % {"choices": ", ".join(SourceChannel.values)}]
    if errors:
        raise ValidationError(errors)
    write_key = secrets.token_urlsafe(24)
    with transaction.atomic():
        source = EventSource.objects.create(
            name=name,
            write_key_hash=write_key_hash(write_key),
            write_key_prefix=write_key[:PREFIX_LENGTH],
            source_channel=source_channel,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_record(actor=actor, action="event_source.create", target=source, fields=["name", "source_channel"])
    return source, write_key


def event_source_for_key(write_key: str) -> EventSource | None:
    """The active source whose write key this is, or None."""
    if not write_key:
        return None
    return EventSource.objects.filter(write_key_hash=write_key_hash(write_key), is_active=True).first()
