from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cim.core.crypto import EncryptedJSONField
from cim.customers.choices import SourceChannel
from cim.privacy.models import ConsentPurpose


class ImportJob(models.Model):
    """One file being imported: its options, where it got to, and what it did. Batches commit with the checkpoint."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        QUEUED = "queued", _("Queued")
        CHECKING = "checking", _("Dry run in progress")
        CHECKED = "checked", _("Dry run done")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=20, default="customers")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.UPLOADED)
    file = models.CharField(_("stored file"), max_length=300)
    filename = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    file_format = models.CharField(_("format"), max_length=10)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    headers = models.JSONField(_("columns"), default=list, blank=True)
    # Where the header was found: rows above it (a title, the export time) are not read.
    header_row = models.PositiveIntegerField(_("header row"), default=1)
    # The workbook's sheet read (blank for files without sheets).
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    mapping = models.JSONField(_("mapping"), default=dict, blank=True)
    source = models.CharField(_("source system"), max_length=50, blank=True)
    source_channel = models.CharField(_("source channel"), max_length=20, blank=True)
    update_existing = models.BooleanField(_("update matching customers"), default=False)
    dry_run = models.BooleanField(_("dry run"), default=False)
    rows_done = models.PositiveIntegerField(_("rows processed"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    dry_run_counts = models.JSONField(_("dry-run counts"), default=dict, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-id"]
        indexes = [models.Index(fields=["sha256", "status"], name="import_job_file_idx")]

    def __str__(self) -> str:
        return self.filename


class ImportRowError(models.Model):
    """Why one row (or one field of it) was rejected. Names the column, never repeats the personal value."""

    job = models.ForeignKey(ImportJob, verbose_name=_("import"), on_delete=models.CASCADE, related_name="row_errors")
    dry_run = models.BooleanField(_("dry run"), default=False)
    row = models.PositiveIntegerField(_("row"))
    column = models.CharField(_("column"), max_length=200, blank=True)
    message = models.CharField(_("reason"), max_length=500)

    class Meta:
        verbose_name = _("import row error")
        verbose_name_plural = _("import row errors")
        ordering = ["job", "row", "id"]
        indexes = [models.Index(fields=["job", "dry_run", "row"], name="import_error_job_idx")]

    def __str__(self) -> str:
        return f"{self.row}: {self.message}"


class ImportMapping(models.Model):
    """A saved column mapping, so the next export from the same system maps itself."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    mapping = models.JSONField(_("mapping"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved mapping")
        verbose_name_plural = _("saved mappings")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EventSource(models.Model):
    """A website or app that sends events; its write key is the basic-auth user of the tracking API."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    write_key_hash = models.CharField(_("write key (hashed)"), max_length=64, unique=True)
    write_key_prefix = models.CharField(_("write key prefix"), max_length=8)
    source_channel = models.CharField(_("source channel"), max_length=20, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event source")
        verbose_name_plural = _("event sources")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CollectionForm(models.Model):
    """A public data collection form (数据收集表单): which fields it asks, its consent text, how it verifies."""

    class Verify(models.TextChoices):
        NONE = "none", _("No verification")
        EMAIL = "email", _("Email link (double opt-in)")
        SMS = "sms", _("SMS code")
        BOTH = "both", _("Email link and SMS code")

    slug = models.SlugField(_("web address"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    title_zh = models.CharField(_("title (Chinese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    # [{"field": "phone", "required": true, "label_zh": "手机号", "label_en": "Mobile phone"}, ...], in order.
    fields = models.JSONField(_("fields"), default=list)
    consent_purpose = models.CharField(_("consent purpose"), max_length=20, choices=ConsentPurpose.choices)
    consent_text_zh = models.TextField(_("consent text (Chinese)"))
    consent_text_en = models.TextField(_("consent text (English)"))
    consent_version = models.CharField(_("consent text version"), max_length=30)
    source_channel = models.CharField(
        _("source channel"), max_length=20, choices=SourceChannel.choices, default=SourceChannel.WEBSITE
    )
    verify = models.CharField(_("verification"), max_length=5, choices=Verify.choices, default=Verify.SMS)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("collection form")
        verbose_name_plural = _("collection forms")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def channels_for(verify: str) -> tuple[str, ...]:
        """The verifications a submission needs under `verify`: "sms", "email", both or none."""
        return {"email": ("email",), "sms": ("sms",), "both": ("sms", "email")}.get(verify, ())

    @property
    def channels(self) -> tuple[str, ...]:
        return self.channels_for(self.verify)

    def title(self, language: str) -> str:
        return self.title_zh if language.startswith("zh") else self.title_en

    def consent_text(self, language: str) -> str:
        return self.consent_text_zh if language.startswith("zh") else self.consent_text_en


class FormSubmission(models.Model):
    """What a visitor sent through a collection form, as sent; becomes customer data once verified."""

    class Status(models.TextChoices):
        PENDING = "pending_verification", _("Awaiting verification")
        CONFIRMED = "confirmed", _("Confirmed")
        REJECTED = "rejected", pgettext_lazy("form submission", "Rejected")

    form = models.ForeignKey(
        CollectionForm, verbose_name=_("form"), on_delete=models.PROTECT, related_name="submissions"
    )
    # Encrypted: a visitor's phone, email, address and birthday as typed (docs/encryption.md).
    raw = EncryptedJSONField(_("submitted values"), default=dict)
    # The consent as the visitor saw it: the form's text may change before the submission is confirmed.
    consent_text = models.TextField(_("consent text shown"), blank=True)
    consent_version = models.CharField(_("consent text version"), max_length=30, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")
        ordering = ["-id"]
        indexes = [models.Index(fields=["form", "-id"], name="form_submission_form_idx")]

    def __str__(self) -> str:
        return f"{self.form_id}/{self.pk}"


class VerificationChallenge(models.Model):
    """One contact of a submission to prove: an SMS code or an email link. Only keyed hashes are stored."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")

    submission = models.ForeignKey(
        FormSubmission, verbose_name=_("submission"), on_delete=models.CASCADE, related_name="challenges"
    )
    channel = models.CharField(_("channel"), max_length=5, choices=Channel.choices)
    target_hash = models.CharField(_("phone or email (hashed)"), max_length=32)
    code_hash = models.CharField(_("code (hashed)"), max_length=64)
    attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)
    expires_at = models.DateTimeField(_("expires at"))
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")
        ordering = ["submission", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "channel"], name="verification_one_per_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.submission_id} {self.channel}"
