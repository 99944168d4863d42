"""The backup catalog. It lives in the database it describes, so each backup file also has a JSON manifest beside
it from which `cim backup rebuild-catalog` (and every restore) rebuilds these rows."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Backup(models.Model):
    """One encrypted backup file: what it holds, its checksum, and whether it was verified."""

    class Kind(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")
        MANUAL = "manual", _("Manual")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        CREATED = "created", _("Created, not verified")
        VERIFIED = "verified", _("Verified")
        FAILED = "failed", _("Failed")

    file_name = models.CharField(_("file name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MANUAL)
    engine = models.CharField(_("database engine"), max_length=20)
    size = models.BigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64, blank=True)
    key_id = models.CharField(_("key id"), max_length=32, blank=True)
    # {table: rows} at the moment of the snapshot; verify and the SQLite→PostgreSQL move compare against it.
    row_counts = models.JSONField(_("rows per table"), default=dict, blank=True)
    uploads = models.PositiveIntegerField(_("uploaded files"), default=0)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(_("error"), blank=True)
    duration = models.FloatField(_("duration (s)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    checked_at = models.DateTimeField(_("last checked at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "status", "created_at"], name="backup_kind_status_created")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())
