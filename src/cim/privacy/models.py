from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.customers.choices import SourceChannel


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing messages")
    SERVICE = "service", _("Customer service")
    EVENTS = "events", _("Events and activities")
    RESEARCH = "research", _("Surveys and research")


class Consent(models.Model):
    """One consent given (or withdrawn) by a customer: purpose, the exact text and its version, when, from where.

    The ledger is evidence (PIPL Art. 14, GDPR Art. 7(1)): rows are appended, never edited, and a customer
    with consents cannot be deleted by accident.
    """

    Purpose = ConsentPurpose

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="consents"
    )
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    text_version = models.CharField(_("text version"), max_length=30)
    text = models.TextField(_("text shown"))
    language = models.CharField(_("language"), max_length=10, blank=True)
    granted = models.BooleanField(_("granted"), default=True)
    channel = models.CharField(_("channel"), max_length=20, choices=SourceChannel.choices, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)
    submission = models.ForeignKey(
        "ingest.FormSubmission",
        verbose_name=_("form submission"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="consents",
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "purpose", "-at"], name="consent_customer_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.purpose} {self.text_version}"
