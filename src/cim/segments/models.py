"""Segments (客户细分): named groups of customers, either kept by rules (dynamic) or by hand (static lists)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    """A named group of customers: members follow the rules (dynamic) or are added by hand (static list)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic (by rules)")
        STATIC = "static", _("Static list")

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    # The rule tree of a dynamic segment (see cim.segments.rules); empty for a static list.
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    # Tag rule: while set, exactly the members carry this tag (added on entry, removed on leaving).
    tag = models.OneToOneField(
        "customers.Tag",
        verbose_name=_("tag the members with"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="segment",
    )
    size = models.PositiveIntegerField(_("customers"), default=0)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
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
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A customer in a segment, since when."""

    # segment_member_unique and segment_member_customer_idx lead with these: no index of their own.
    segment = models.ForeignKey(
        Segment, verbose_name=_("segment"), on_delete=models.CASCADE, related_name="members", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        db_index=False,
    )
    added_at = models.DateTimeField(_("added at"))

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        ordering = ["segment", "customer"]
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique")]
        indexes = [models.Index(fields=["customer"], name="segment_member_customer_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id}"
