from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """Something that happened, kept until automation rules and webhooks have taken it (the outbox)."""

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(_("event"), max_length=60)
    # Not a foreign key: the event outlives a customer merged away or erased, and names it by id only.
    customer_id = models.BigIntegerField(_("customer"), null=True, blank=True)
    # Ids, field names and amounts only, never personal values (docs/events.md).
    data = models.JSONField(_("data"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(dispatched_at__isnull=True), name="event_pending_idx"),
            models.Index(fields=["customer_id", "id"], name="event_customer_idx"),
            models.Index(fields=["dispatched_at"], name="event_dispatched_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"
