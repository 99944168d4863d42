import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.customers.choices import SourceChannel


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing messages")
    SERVICE = "service", _("Customer service")
    EVENTS = "events", _("Events and activities")
    RESEARCH = "research", _("Surveys and research")
    # Purposes that need separate consent (单独同意, PIPL Art. 29, 23, 39; GDPR Art. 9, 49(1)(a)).
    SENSITIVE = "sensitive", _("Processing of sensitive personal information")
    THIRD_PARTY = "third_party", _("Sharing with a third party")
    CROSS_BORDER = "cross_border", _("Transfer outside the country")


SEPARATE_CONSENT = frozenset({ConsentPurpose.SENSITIVE, ConsentPurpose.THIRD_PARTY, ConsentPurpose.CROSS_BORDER})


class Consent(models.Model):
    """One consent given (or withdrawn) by a customer: purpose, the exact text and its version, when, from where.

    The ledger is evidence (PIPL Art. 14, GDPR Art. 7(1)): rows are appended, never edited, and a customer
    with consents cannot be deleted by accident. A withdrawal is a new row with `granted=False`; the current
    state of a customer and purpose is its latest row (`cim.privacy.selectors.consent_holds`).
    """

    Purpose = ConsentPurpose

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="consents"
    )
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    text_version = models.CharField(_("text version"), max_length=30)
    text = models.TextField(_("text shown"))
    # SHA-256 of the notice exactly as shown: proves which text a consent was given to, even after it changes.
    text_sha256 = models.CharField(_("text SHA-256"), max_length=64, blank=True)
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


class RequestKind(models.TextChoices):
    ACCESS = "access", _("Access / copy")
    PORTABILITY = "portability", _("Portability")
    RECTIFICATION = "rectification", _("Rectification")
    ERASURE = "erasure", _("Erasure")
    RESTRICTION = "restriction", _("Restriction of processing")
    WITHDRAWAL = "withdrawal", _("Withdrawal of consent")


class Law(models.TextChoices):
    PIPL = "pipl", _("PIPL (China)")
    GDPR = "gdpr", _("GDPR (EU)")


class RequestStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    VERIFIED = "verified", _("Identity verified")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")


OPEN_REQUEST_STATUSES = (RequestStatus.RECEIVED, RequestStatus.VERIFIED, RequestStatus.IN_PROGRESS)


class IdentityStatus(models.TextChoices):
    PENDING = "pending", _("Not checked yet")
    VERIFIED = "verified", _("Verified")
    FAILED = "failed", _("Could not be verified")


class IdentityMethod(models.TextChoices):
    NONE = "", _("—")
    ID_DOCUMENT = "id_document", _("Identity document")
    SMS_CODE = "sms_code", _("Code sent to a known phone")
    EMAIL_LINK = "email_link", _("Link sent to a known email")
    IN_PERSON = "in_person", _("In person")
    ACCOUNT = "account", _("Signed-in account")
    OTHER = "other", _("Other")


class DataSubjectRequest(models.Model):
    """A request by a person about their data (access, erasure…), tracked to its legal deadline."""

    Kind = RequestKind
    Status = RequestStatus

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="data_requests",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=RequestKind.choices)
    law = models.CharField(_("law"), max_length=8, choices=Law.choices, default=Law.PIPL)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    due_at = models.DateTimeField(_("due at"))
    channel = models.CharField(_("received by"), max_length=20, choices=SourceChannel.choices, blank=True)
    # What the person asked, in their words: personal, blanked when the customer is erased.
    details = models.TextField(_("details"), blank=True)
    identity_status = models.CharField(
        _("identity check"), max_length=10, choices=IdentityStatus.choices, default=IdentityStatus.PENDING
    )
    identity_method = models.CharField(
        _("identity checked by"), max_length=12, choices=IdentityMethod.choices, blank=True, default=""
    )
    status = models.CharField(_("status"), max_length=12, choices=RequestStatus.choices, default=RequestStatus.RECEIVED)
    rejection_reason = models.CharField(_("reason for rejection"), max_length=500, blank=True)
    handler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("handler"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    completed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="dsr_status_due_idx"),
            models.Index(fields=["customer", "-received_at"], name="dsr_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"DSR-{self.pk}"

    @property
    def reference(self) -> str:
        return f"DSR-{self.pk:06d}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REQUEST_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()


class ProcessingRestriction(models.Model):
    """A customer whose data may only be stored (PIPL Art. 44, GDPR Art. 18): edits and marketing are refused."""

    customer = models.OneToOneField(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="restriction"
    )
    request = models.ForeignKey(
        DataSubjectRequest,
        verbose_name=_("request"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    since = models.DateTimeField(_("since"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("processing restriction")
        verbose_name_plural = _("processing restrictions")
        ordering = ["-since"]

    def __str__(self) -> str:
        return str(self.customer_id)


class ErasureTombstone(models.Model):
    """That a customer was erased: ids only, no personal value. Replayed after a restore so nobody comes back."""

    customer_id = models.BigIntegerField(_("customer id"), unique=True)
    number = models.CharField(_("customer number"), max_length=32)
    erased_at = models.DateTimeField(_("erased at"), default=timezone.now)
    request_id = models.BigIntegerField(_("request id"), null=True, blank=True)
    replayed_at = models.DateTimeField(_("last replayed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("erasure tombstone")
        verbose_name_plural = _("erasure tombstones")
        ordering = ["erased_at", "id"]

    def __str__(self) -> str:
        return self.number


class RetentionRule(models.Model):
    """How long data is kept: evaluated set-based every day by the worker."""

    class Action(models.TextChoices):
        ANONYMISE_INACTIVE = "anonymise_inactive", _("Anonymise customers with no activity for N days")
        DELETE_SUBMISSIONS = "delete_submissions", _("Delete raw form submissions older than N days")
        SCRUB_EVENTS = "scrub_events", _("Scrub behaviour event properties older than N days")
        DELETE_IMPORT_FILES = "delete_import_files", _("Delete uploaded import files older than N days")

    name = models.CharField(_("name"), max_length=100, unique=True)
    action = models.CharField(_("action"), max_length=24, choices=Action.choices)
    days = models.PositiveIntegerField(_("after (days)"))
    enabled = models.BooleanField(_("enabled"), default=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    last_run_count = models.PositiveIntegerField(_("last run count"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("retention rule")
        verbose_name_plural = _("retention rules")
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(days__gte=1), name="retention_rule_days_positive")]

    def __str__(self) -> str:
        return self.name


class BreachIncident(models.Model):
    """A personal-information security incident (PIPL Art. 57, GDPR Art. 33/34), with its 72-hour clock."""

    title = models.CharField(_("title"), max_length=200)
    detected_at = models.DateTimeField(_("detected at"))
    nature = models.TextField(_("nature of the incident"))
    data_categories = models.CharField(_("categories of data"), max_length=500)
    subject_categories = models.CharField(_("categories of people"), max_length=500, blank=True)
    approx_subjects = models.PositiveIntegerField(_("approximate number of people"), default=0)
    consequences = models.TextField(_("likely consequences"), blank=True)
    measures = models.TextField(_("measures taken"), blank=True)
    authority_notified_at = models.DateTimeField(_("authority notified at"), null=True, blank=True)
    subjects_notified_at = models.DateTimeField(_("people notified at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("security incident")
        verbose_name_plural = _("security incidents")
        ordering = ["-detected_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def authority_due_at(self):
        return self.detected_at + datetime.timedelta(hours=72)

    @property
    def is_overdue(self) -> bool:
        return self.authority_notified_at is None and self.authority_due_at < timezone.now()


class CrossBorderTransfer(models.Model):
    """Personal information sent outside the country (PIPL Art. 38–40, GDPR Chapter V)."""

    class Basis(models.TextChoices):
        STANDARD_CONTRACT = "standard_contract", _("Standard contract (CAC)")
        CERTIFICATION = "certification", _("Personal information protection certification")
        SECURITY_ASSESSMENT = "security_assessment", _("Security assessment (CAC)")
        EXEMPT = "exempt", _("Exempt (contract performance, HR, emergency)")
        ADEQUACY = "adequacy", _("Adequacy decision (GDPR Art. 45)")
        SCC = "scc", _("Standard contractual clauses (GDPR Art. 46)")

    recipient = models.CharField(_("recipient"), max_length=200)
    country = models.CharField(_("country or region"), max_length=100)
    purpose = models.CharField(_("purpose"), max_length=300)
    legal_basis = models.CharField(_("legal basis"), max_length=20, choices=Basis.choices)
    data_categories = models.CharField(_("categories of data"), max_length=500)
    sensitive = models.BooleanField(_("includes sensitive personal information"), default=False)
    # {"2026": 1200, ...}: individuals whose data went out per calendar year (the CAC thresholds count per year).
    yearly_counts = models.JSONField(_("individuals per year"), default=dict, blank=True)
    started_on = models.DateField(_("since"), null=True, blank=True)
    ended_on = models.DateField(_("until"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("cross-border transfer")
        verbose_name_plural = _("cross-border transfers")
        ordering = ["recipient", "id"]

    def __str__(self) -> str:
        return f"{self.recipient} ({self.country})"


class ImpactAssessment(models.Model):
    """A personal information protection impact assessment (PIPIA, PIPL Art. 55–56; DPIA, GDPR Art. 35)."""

    class Conclusion(models.TextChoices):
        ACCEPTABLE = "acceptable", _("Risks acceptable")
        WITH_MEASURES = "with_measures", _("Acceptable with the measures listed")
        NOT_ACCEPTABLE = "not_acceptable", _("Not acceptable: do not proceed")
        CONSULT = "consult", _("Consult the authority first")

    subject = models.CharField(_("subject"), max_length=200)
    assessed_on = models.DateField(_("date"))
    processing = models.TextField(_("processing assessed"), blank=True)
    risks = models.TextField(_("risks"))
    measures = models.TextField(_("measures"))
    conclusion = models.CharField(_("conclusion"), max_length=16, choices=Conclusion.choices)
    review_on = models.DateField(_("review by"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("impact assessment")
        verbose_name_plural = _("impact assessments")
        ordering = ["-assessed_on", "-id"]

    def __str__(self) -> str:
        return self.subject
