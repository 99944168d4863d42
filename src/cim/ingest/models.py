from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
