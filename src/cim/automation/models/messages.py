from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.privacy.models import ConsentPurpose


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WECHAT = "wechat", _("WeChat")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Marked as spam")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Not sent")
    # A worker stopped between handing the message over and hearing back: it may or may not have arrived, and it
    # is never resent blindly (docs/messages.md, exactly once).
    REVIEW = "review", _("To review: may not have arrived")


class SuppressionReason(models.TextChoices):
    CONSENT = "consent", _("No consent for the purpose")
    RESTRICTED = "restricted", _("Processing restricted")
    FREQUENCY_CAP = "frequency_cap", _("Frequency cap reached")
    NO_ADDRESS = "no_address", _("No address for the channel")
    SUPPRESSED_ADDRESS = "suppressed_address", _("Address bounced or complained")
    NO_TEMPLATE = "no_template", _("No template in the customer's language")


class MessageTemplate(models.Model):
    """A message people write once and send to many: subject and body in a safe template language."""

    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body = models.TextField(_("text"))
    html = models.TextField(_("HTML"), blank=True)
    # SMS and WeChat gateways send only templates registered with them beforehand: the id they gave it, and each
    # of its parameters as an expression of ours (`{"name": "{{ customer.display_name }}"}`).
    provider_template_id = models.CharField(_("provider template id"), max_length=100, blank=True)
    params = models.JSONField(_("provider template parameters"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name", "language"]
        constraints = [models.UniqueConstraint(fields=["name", "language"], name="message_template_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class Message(models.Model):
    """One message to one customer on one channel, from its queueing to what the provider said of it."""

    id = models.BigAutoField(primary_key=True)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    template = models.ForeignKey(
        MessageTemplate, verbose_name=_("template"), on_delete=models.SET_NULL, null=True, blank=True
    )
    # The idempotency key (`campaign:12:variant:a:customer:345`): queueing the same message twice is a no-op.
    key = models.CharField(_("key"), max_length=200, unique=True)
    origin = models.CharField(_("origin"), max_length=20, default="manual")
    # Plain ids, not foreign keys, so messaging does not depend on the parts that send through it.
    campaign_id = models.BigIntegerField(_("campaign"), null=True, blank=True)
    rule_run_id = models.BigIntegerField(_("rule run"), null=True, blank=True)
    # What the caller added to the template's context; rendered at send time with the customer's current data.
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices, blank=True)
    send_after = models.DateTimeField(_("send after"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # A worker's lease on a queued message; expired leases are taken over (docs/messages.md).
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=30, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    # The keyed hash of the address it went to (never the address): bounces and complaints suppress it.
    address_key = models.CharField(_("address key"), max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    status_at = models.DateTimeField(_("status changed at"), default=timezone.now)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["send_after", "id"], condition=Q(status="queued"), name="message_due_idx"),
            models.Index(fields=["customer", "purpose", "created_at"], name="message_customer_idx"),
            models.Index(fields=["provider", "provider_message_id"], name="message_provider_idx"),
            models.Index(fields=["campaign_id"], condition=Q(campaign_id__isnull=False), name="message_campaign_idx"),
            models.Index(fields=["rule_run_id"], condition=Q(rule_run_id__isnull=False), name="message_rule_run_idx"),
            models.Index(fields=["claimed_until"], condition=Q(status="sending"), name="message_sending_idx"),
            models.Index(fields=["status", "created_at"], name="message_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk}"


class SuppressedAddress(models.Model):
    """An address not to send to again (it bounced, or its owner complained), by its keyed hash."""

    class Reason(models.TextChoices):
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Marked as spam")

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    address_key = models.CharField(_("address key"), max_length=32)
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    message = models.ForeignKey(
        Message, verbose_name=_("message"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "address_key"], name="suppressed_address_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.address_key[:8]}"
