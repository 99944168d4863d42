from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.core.crypto import EncryptedTextField


class AuditEvent(models.Model):
    """One recorded action: who did what to which object, when, in which request. Never personal values."""

    # Set in Python, not by the database: the chain links the exact value written.
    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    action = models.CharField(_("action"), max_length=60)
    target_type = models.CharField(_("target type"), max_length=60)
    target_id = models.CharField(_("target id"), max_length=40)
    fields = models.JSONField(_("fields"), default=list, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    # The place in the chain and the link: HMAC-SHA256(key, previous chain ‖ this event's columns), see chain.py.
    seq = models.PositiveBigIntegerField(_("sequence number"), unique=True, editable=False)
    chain = models.CharField(_("chain"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-at"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class FieldChange(models.Model):
    """A field's old and new value for one audit event; erasure can wipe these without breaking the log."""

    # No constraint in the database: audit events are partitioned by month on PostgreSQL (cim.core.partitions), and
    # a key into a partitioned table must name its partition column too.
    event = models.ForeignKey(
        AuditEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="changes", db_constraint=False
    )
    field = models.CharField(_("field"), max_length=80)
    # Encrypted: the history of sensitive fields (phones, birthdays) is as sensitive as the fields themselves.
    old_value = EncryptedTextField(_("old value"), blank=True)
    new_value = EncryptedTextField(_("new value"), blank=True)

    class Meta:
        verbose_name = _("field change")
        verbose_name_plural = _("field changes")
        ordering = ["event", "id"]

    def __str__(self) -> str:
        return self.field


class AuditChainHead(models.Model):
    """The last link of the audit chain (one row): appends lock it, verification checks the log ends there."""

    seq = models.PositiveBigIntegerField(_("sequence number"), default=0)
    chain = models.CharField(_("chain"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_single_row")]

    def __str__(self) -> str:
        return f"{self.seq}"
