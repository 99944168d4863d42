"""Campaigns (营销活动): an email to a segment or static list, optionally A/B-tested, and what it earned."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cim.privacy.models import ConsentPurpose


class Campaign(models.Model):
    """An email sent to the members of a segment or static list, through messaging, with its A/B test and report."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        TESTING = "testing", _("A/B test running")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    class Metric(models.TextChoices):
        OPEN_RATE = "open_rate", _("Open rate")
        CLICK_RATE = "click_rate", _("Click rate")
        CONVERSION_RATE = "conversion_rate", _("Conversion rate")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    purpose = models.CharField(
        _("consent purpose"), max_length=20, choices=ConsentPurpose.choices, default=ConsentPurpose.MARKETING
    )
    segment = models.ForeignKey(
        "segments.Segment", verbose_name=_("audience"), on_delete=models.PROTECT, related_name="campaigns"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    # A/B test: this share of the audience gets the variants in equal parts; after the wait, the rest gets the one
    # with the best metric. 0 (or a single variant) sends the first variant to everyone.
    test_percent = models.PositiveSmallIntegerField(_("test share (%)"), default=0)
    test_metric = models.CharField(
        _("winning metric"), max_length=20, choices=Metric.choices, default=Metric.CLICK_RATE
    )
    test_wait_hours = models.PositiveIntegerField(_("test period (hours)"), default=4)
    winner = models.ForeignKey(
        "automation.CampaignVariant",
        verbose_name=_("winning variant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # 0 sends as fast as the worker can; otherwise at most this many messages are due per minute.
    throttle_per_minute = models.PositiveIntegerField(_("messages per minute"), default=0)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=7)
    cost = models.DecimalField(_("cost"), max_digits=14, decimal_places=2, default=0)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    test_ends_at = models.DateTimeField(_("test ends at"), null=True, blank=True)
    # When the whole audience was handed to messaging; the campaign is sent once messaging has sent them all.
    queued_at = models.DateTimeField(_("audience queued at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(test_percent__lte=90), name="campaign_test_percent_max"),
        ]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignVariant(models.Model):
    """One version of a campaign's email (A, B, ...): its subject and content, kept as a messaging template."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="variants"
    )
    label = models.CharField(_("label"), max_length=2)
    # The messaging template holding this variant's subject and body; its messages point at it.
    template = models.OneToOneField(
        "automation.MessageTemplate", verbose_name=_("template"), on_delete=models.PROTECT, related_name="variant"
    )
    # The same content in other languages: each recipient gets the one in their language (messages_queue).
    translations = models.ManyToManyField(
        "automation.MessageTemplate", verbose_name=_("translations"), blank=True, related_name="variant_translations"
    )

    class Meta:
        verbose_name = _("campaign variant")
        verbose_name_plural = _("campaign variants")
        ordering = ["campaign", "label"]
        constraints = [models.UniqueConstraint(fields=["campaign", "label"], name="campaign_variant_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.label}"

    def templates(self) -> dict:
        """The variant's templates by language, its own language first."""
        return {self.template.language: self.template} | {t.language: t for t in self.translations.all()}


class CampaignConversion(models.Model):
    """An order credited to a campaign: placed within the attribution window after a click on its email; an order
    is credited once, to the campaign clicked last before it."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="conversions"
    )
    variant = models.ForeignKey(
        CampaignVariant, verbose_name=_("variant"), null=True, on_delete=models.SET_NULL, related_name="conversions"
    )
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    order = models.OneToOneField(
        "activities.Order", verbose_name=_("order"), on_delete=models.CASCADE, related_name="campaign_conversion"
    )
    message_id = models.BigIntegerField(_("message"))
    clicked_at = models.DateTimeField(_("clicked at"))
    ordered_at = models.DateTimeField(_("ordered at"))
    credited_at = models.DateTimeField(_("credited at"))

    class Meta:
        verbose_name = _("campaign conversion")
        verbose_name_plural = _("campaign conversions")
        ordering = ["-ordered_at", "-id"]
        indexes = [models.Index(fields=["campaign", "variant"], name="campaign_conversion_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.order_id}"
