from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cim.customers.choices import SourceChannel


class BehaviourEvent(models.Model):
    """One call of the tracking API (identify, track, page…), as sent, on the customer it belongs to once known."""

    class Type(models.TextChoices):
        IDENTIFY = "identify", _("Identify")
        TRACK = "track", _("Track")
        PAGE = "page", _("Page view")
        SCREEN = "screen", _("Screen view")
        GROUP = "group", _("Group")
        ALIAS = "alias", _("Alias")

    source = models.ForeignKey(
        "ingest.EventSource", verbose_name=_("event source"), on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="behaviour_events",
    )
    type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    name = models.CharField(_("name"), max_length=200, blank=True)
    user_id = models.CharField(_("user id"), max_length=200, blank=True)
    anonymous_id = models.CharField(_("anonymous id"), max_length=200, blank=True)
    # Track and page properties; for identify, the traits as sent (unknown traits are kept only here).
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    context = models.JSONField(_("context"), default=dict, blank=True)
    channel = models.CharField(_("channel"), max_length=20, choices=SourceChannel.choices, blank=True)
    # Traits of an identify that could not be applied to the customer: [{field, code, message}].
    trait_errors = models.JSONField(_("rejected traits"), default=list, blank=True)
    message_id = models.CharField(_("message id"), max_length=100)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("behaviour event")
        verbose_name_plural = _("behaviour events")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="behaviour_event_message_unique"),
        ]
        indexes = [
            # The timeline, and each customer's first and last touch, read it forwards or backwards.
            models.Index(fields=["customer", "occurred_at", "id"], name="behaviour_event_customer_idx"),
            # Only events still waiting for their customer: what an identify joins.
            models.Index(
                fields=["source", "anonymous_id"], condition=Q(customer__isnull=True), name="behaviour_event_anon_idx"
            ),
            models.Index(fields=["user_id"], condition=Q(customer__isnull=True), name="behaviour_event_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class AnonymousLink(models.Model):
    """An anonymous id of a source (a browser, an app install) that an identify tied to a customer."""

    source = models.ForeignKey(
        "ingest.EventSource", verbose_name=_("event source"), on_delete=models.PROTECT, related_name="+"
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=200)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="anonymous_links"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("anonymous id link")
        verbose_name_plural = _("anonymous id links")
        ordering = ["source", "anonymous_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "anonymous_id"], name="anonymous_link_unique"),
        ]
        indexes = [models.Index(fields=["customer"], name="anonymous_link_customer_idx")]

    def __str__(self) -> str:
        return self.anonymous_id


class TouchPoint(models.Model):
    """A customer's first or last behaviour event, with its channel and campaign: for attribution."""

    class Kind(models.TextChoices):
        FIRST = "first", _("First touch")
        LAST = "last", _("Last touch")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="touch_points"
    )
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices)
    source = models.ForeignKey(
        "ingest.EventSource", verbose_name=_("event source"), on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=20, choices=SourceChannel.choices, blank=True)
    utm_source = models.CharField(_("campaign source"), max_length=200, blank=True)
    utm_medium = models.CharField(_("campaign medium"), max_length=200, blank=True)
    utm_campaign = models.CharField(_("campaign name"), max_length=200, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("touch point")
        verbose_name_plural = _("touch points")
        ordering = ["customer", "kind"]
        constraints = [models.UniqueConstraint(fields=["customer", "kind"], name="touch_point_unique")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.channel}"
