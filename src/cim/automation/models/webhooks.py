from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.accounts.roles import Role
from cim.core.crypto import EncryptedJSONField, EncryptedTextField


class WebhookEndpoint(models.Model):
    """A URL that receives signed event notifications, seeing customers as its scope (a role or a user) would."""

    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # The event types subscribed to; ignored when `all_events` is set (new catalogue entries included).
    event_types = models.JSONField(_("event types"), default=list, blank=True)
    all_events = models.BooleanField(_("all event types"), default=False)
    # Standard Webhooks secret (`whsec_` + base64), encrypted at rest. After a rotation the previous one keeps
    # signing beside it until `previous_secret_expires_at`, so receivers can switch without losing a message.
    secret = EncryptedTextField(_("signing secret"))
    previous_secret = EncryptedTextField(_("previous signing secret"), blank=True)
    previous_secret_expires_at = models.DateTimeField(_("previous secret valid until"), null=True, blank=True)
    # Exactly one of the two: whose view of customers (record scope and field masking) the payloads carry.
    scope_role = models.CharField(_("scope role"), max_length=20, choices=Role.choices, blank=True)
    scope_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("scope user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    is_active = models.BooleanField(_("active"), default=True)
    failure_count = models.PositiveIntegerField(_("consecutive failures"), default=0)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("reason disabled"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope_role="") & Q(scope_user__isnull=False))
                | (~Q(scope_role="") & Q(scope_user__isnull=True)),
                name="webhook_endpoint_one_scope",
            )
        ]

    def __str__(self) -> str:
        return self.description or self.url

    def subscribes(self, event_type: str) -> bool:
        return self.all_events or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event (or one rule's call) to send to one endpoint, with every attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed, will retry")
        DEAD = "dead", _("Gave up")

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    # `event:<id>` for an event of the outbox, the caller's key for `webhook_send`: a delivery is recorded once.
    key = models.CharField(_("key"), max_length=200)
    # The `webhook-id` header: the same on every attempt and replay, so receivers can drop duplicates.
    message_id = models.CharField(_("message id"), max_length=40)
    event_id = models.BigIntegerField(_("event"), null=True, blank=True)
    event_type = models.CharField(_("event type"), max_length=60)
    # Not a foreign key (the delivery outlives a merge); erasure blanks the payloads by it (PI registry).
    customer_id = models.BigIntegerField(_("customer"), null=True, blank=True)
    # The body, built when the event was dispatched; encrypted: it may hold the customer's contact details.
    payload = EncryptedJSONField(_("payload"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # When it is due; while a sender holds it, the end of its lease (a sender that dies gives it back then).
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    response_ms = models.PositiveIntegerField(_("response time (ms)"), null=True, blank=True)
    # The last attempts: time, code, milliseconds, error and the start of the response body.
    log = models.JSONField(_("attempt log"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "key"], name="webhook_delivery_key_unique")]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status__in=["pending", "failed"]),
                name="webhook_delivery_due_idx",
            ),
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint_idx"),
            models.Index(fields=["customer_id"], name="webhook_delivery_customer_idx"),
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"
