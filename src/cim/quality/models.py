from django.db import models
from django.utils.translation import gettext_lazy as _


class DuplicateCandidate(models.Model):
    """Two customers that look like one, kept apart until a person decides (merging comes with deduplication)."""

    class Reason(models.TextChoices):
        SAME_PHONE = "same_phone", _("Same phone number")
        SAME_EMAIL = "same_email", _("Same email address")

    class Status(models.TextChoices):
        OPEN = "open", _("Awaiting review")
        MERGED = "merged", _("Merged")
        DISTINCT = "distinct", _("Not the same")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    other = models.ForeignKey(
        "customers.Customer", verbose_name=_("looks like"), on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    detected_by = models.CharField(_("detected by"), max_length=60)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["customer", "other"], name="duplicate_candidate_unique")]
        indexes = [models.Index(fields=["status", "-id"], name="duplicate_candidate_status_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} ~ {self.other_id}"
