from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cim.core.crypto import EncryptedJSONField


class DuplicateCandidate(models.Model):
    """Two customers that look like one, kept apart until a person decides: merge them, or mark them distinct.
    `customer` is the later record. Scored pairs carry the model's probability and each field's part in it."""

    class Reason(models.TextChoices):
        SAME_PHONE = "same_phone", _("Same phone number")
        SAME_EMAIL = "same_email", _("Same email address")
        MODEL = "model", _("Matching model")

    class Status(models.TextChoices):
        OPEN = "open", _("Awaiting review")
        MERGED = "merged", _("Merged")
        DISTINCT = "distinct", _("Not the same")

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # duplicate_candidate_unique leads with it
    )
    other = models.ForeignKey(
        "customers.Customer", verbose_name=_("looks like"), on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    detected_by = models.CharField(_("detected by"), max_length=60)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    probability = models.FloatField(_("match probability"), null=True, blank=True)
    # Comparison name → match weight (log2 Bayes factor): why the model thinks what it thinks.
    contributions = models.JSONField(_("contributions"), default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["customer", "other"], name="duplicate_candidate_unique")]
        indexes = [models.Index(fields=["status", "-id"], name="duplicate_candidate_status_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} ~ {self.other_id}"


class MatchModel(models.Model):
    """A trained duplicate-detection model (Splink settings with their learnt m and u, and term frequencies).
    The newest is used; without one, the model CIM ships."""

    model = models.JSONField(_("model"))
    customers = models.PositiveIntegerField(_("customers trained on"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("matching model")
        verbose_name_plural = _("matching models")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.model.get('cim_version', self.pk)}"


class MergeRecord(models.Model):
    """One merge: the survivor, the records merged into it, where each kept value came from, and everything it
    changed as it was before (customers, moved and removed rows, pair decisions), so that it can be undone."""

    survivor = models.ForeignKey(
        "customers.Customer", verbose_name=_("survivor"), on_delete=models.PROTECT, related_name="+"
    )
    merged_ids = models.JSONField(_("merged customers"))
    provenance = models.JSONField(_("provenance"), default=dict)  # field → the customer number its value came from
    # Encrypted: the rows as they were hold phones, emails, streets, birthdays and ID numbers (docs/encryption.md).
    customers_before = EncryptedJSONField(_("customers before"))
    moved = EncryptedJSONField(_("moved rows"), default=dict)  # model label → rows as they were
    removed = EncryptedJSONField(_("removed rows"), default=dict)
    pairs_before = models.JSONField(_("pair decisions before"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("merged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("undone by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("merge")
        verbose_name_plural = _("merges")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.pk}: {self.merged_ids} → {self.survivor_id}"


class RequiredFields(models.Model):
    """Fields a customer of a type must have, beyond its name (checked on every entry path). A blank customer
    type holds the fields every customer must have."""

    customer_type = models.CharField(_("customer type"), max_length=20, blank=True, unique=True)
    fields = models.JSONField(_("required fields"), default=list)

    class Meta:
        verbose_name = _("required fields")
        verbose_name_plural = _("required fields")
        ordering = ["customer_type"]

    def __str__(self) -> str:
        return self.customer_type or "*"
