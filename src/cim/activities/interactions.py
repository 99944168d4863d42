"""Every write of interactions and their attachments."""

import hashlib
import uuid
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cim.accounts.models import User
from cim.activities.history_schemas import InteractionInput
from cim.activities.mentions import mentions_check, mentions_notify
from cim.activities.models import Attachment, Interaction
from cim.audit.services import audit_record
from cim.customers.models import Customer

# What may be attached, by extension, with the bytes such a file starts with (None: any). Never HTML, SVG or
# scripts: a browser would run them. Files are always served as downloads.
ATTACHMENT_TYPES: dict[str, tuple[str, tuple[bytes, ...] | None]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": ("image/webp", (b"RIFF",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", (b"PK\x03\x04",)),
    "doc": ("application/msword", (b"\xd0\xcf\x11\xe0",)),
    "xls": ("application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0",)),
    "zip": ("application/zip", (b"PK\x03\x04",)),
    "mp3": ("audio/mpeg", (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")),
    "m4a": ("audio/mp4", None),
    "amr": ("audio/amr", (b"#!AMR",)),
    "wav": ("audio/wav", (b"RIFF",)),
    "txt": ("text/plain", None),
    "csv": ("text/csv", None),
    "eml": ("message/rfc822", None),
}
MAX_ATTACHMENTS = 10


def attachment_problem(upload: UploadedFile) -> str | None:
    """Why a file may not be attached (too large, a type not allowed, content not matching its name), or None."""
    limit = settings.CIM_ATTACHMENT_MAX_MB * 1024 * 1024
    if upload.size > limit:
        return _("%(name)s is larger than %(mb)s MB.") % {"name": upload.name, "mb": settings.CIM_ATTACHMENT_MAX_MB}
    if not upload.size:
        return _("%(name)s is empty.") % {"name": upload.name}
    extension = PurePath(upload.name).suffix.lower().lstrip(".")
    if extension not in ATTACHMENT_TYPES:
        return _("%(name)s: files of this type cannot be attached (allowed: %(types)s).") % {
            "name": upload.name,
            "types": ", ".join(sorted(ATTACHMENT_TYPES)),
        }
    signatures = ATTACHMENT_TYPES[extension][1]
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if signatures is not None and not head.startswith(signatures):
        return _("%(name)s does not contain what its name says.") % {"name": upload.name}
    return None


def _stored_name(extension: str) -> str:
    return f"{uuid.uuid4().hex}.{extension}"


def interaction_log(
    *, customer: Customer, data: InteractionInput, actor, files: list[UploadedFile] = ()
) -> Interaction:
    """Log an interaction with the customer, with its attachments (each checked; one bad file refuses all)."""
    if len(files) > MAX_ATTACHMENTS:
        raise ValidationError({"files": _("At most %(n)s files per interaction.") % {"n": MAX_ATTACHMENTS}})
    problems = [problem for problem in map(attachment_problem, files) if problem]
    if problems:
        raise ValidationError({"files": problems})
    staff = list(User.objects.filter(username__in=data.staff, is_active=True))
    unknown = sorted(set(data.staff) - {user.username for user in staff})
    if unknown:
        raise ValidationError({"staff": _("Unknown staff: %(names)s.") % {"names": ", ".join(unknown)}})
    author = actor if actor is not None and actor.is_authenticated else None
    mentioned = mentions_check(text=f"{data.subject}\n{data.body}", customer=customer, field="body")
    with transaction.atomic():
        interaction = Interaction.objects.create(
            customer=customer,
            logged_by=author,
            occurred_at=data.occurred_at or timezone.now(),
            **data.model_dump(exclude={"occurred_at", "staff"}),
        )
        interaction.staff.set(staff)
        for upload in files:
            attachment_add(interaction=interaction, upload=upload, actor=author)
        audit_record(actor=actor, action="interaction.create", target=interaction, note=f"customer {customer.pk}")
        mentions_notify(users=mentioned, customer=customer, actor=author, target=interaction)
    return interaction


def attachment_add(*, interaction: Interaction, upload: UploadedFile, actor) -> Attachment:
    """Store a checked file under a random name; the name as uploaded is kept for the download."""
    extension = PurePath(upload.name).suffix.lower().lstrip(".")
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        interaction=interaction,
        filename=PurePath(upload.name).name[:255],
        content_type=ATTACHMENT_TYPES[extension][0],
        size=upload.size,
        sha256=digest.hexdigest(),
        uploaded_by=actor,
    )
    with transaction.atomic():
        attachment.file.save(_stored_name(extension), upload, save=False)
        attachment.save()
        audit_record(actor=actor, action="attachment.create", target=attachment, note=f"interaction {interaction.pk}")
    return attachment
