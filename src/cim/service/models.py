from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cim.service import choices as c

MAX_ESCALATION_LEVEL = 3


class SlaPolicy(models.Model):
    """The service-level targets of one priority: first response and resolution, in business minutes."""

    priority = models.CharField(_("priority"), max_length=10, choices=c.Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(_("first response within (minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolution within (minutes)"))
    business_hours_only = models.BooleanField(
        _("business hours only"), default=True, help_text=_("Off: the clocks run around the clock, every day.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(first_response_minutes__gt=0), name="sla_policy_response_positive"),
            models.CheckConstraint(
                condition=Q(resolution_minutes__gte=models.F("first_response_minutes")),
                name="sla_policy_resolution_after_response",
            ),
        ]

    def __str__(self) -> str:
        return self.get_priority_display()


class TicketSequence(models.Model):
    """The last ticket number given out in a year: T-2026-000123 is the 123rd ticket of 2026."""

    year = models.PositiveSmallIntegerField(_("year"), unique=True)
    last = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("ticket number sequence")
        verbose_name_plural = _("ticket number sequences")
        ordering = ["year"]

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Ticket(models.Model):
    """A customer's complaint or request, from any channel, worked to resolution under an SLA."""

    Status = c.Status
    Priority = c.Priority

    number = models.CharField(_("ticket number"), max_length=20, unique=True)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="tickets"
    )
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    channel = models.CharField(_("channel"), max_length=12, choices=c.Channel.choices)
    category = models.CharField(_("category"), max_length=12, choices=c.Category.choices, default=c.Category.OTHER)
    priority = models.CharField(_("priority"), max_length=10, choices=c.Priority.choices, default=c.Priority.NORMAL)
    status = models.CharField(_("status"), max_length=12, choices=c.Status.choices, default=c.Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
    )
    # The SLA clocks: deadlines set from the priority's policy when the ticket is opened.
    sla_business_hours = models.BooleanField(_("SLA in business hours"), default=True)
    first_response_due = models.DateTimeField(_("first response due"))
    resolution_due = models.DateTimeField(_("resolution due"))
    first_responded_at = models.DateTimeField(_("first responded at"), null=True, blank=True)
    # Set while the ticket waits on the customer: the resolution clock stands still, its deadline moves on resuming.
    sla_paused_at = models.DateTimeField(_("resolution clock paused at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    reopened_count = models.PositiveSmallIntegerField(_("times reopened"), default=0)
    resolution_code = models.CharField(
        _("resolution"), max_length=20, choices=c.ResolutionCode.choices, blank=True, default=""
    )
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    # When the SLA check escalated the ticket for each missed deadline: each deadline escalates once.
    response_escalated_at = models.DateTimeField(_("escalated for a late first response"), null=True, blank=True)
    resolution_escalated_at = models.DateTimeField(_("escalated for a late resolution"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # When the customer got in touch: the SLA clocks start here (an email's arrival, not its typing in).
    created_at = models.DateTimeField(_("opened at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(escalation_level__lte=MAX_ESCALATION_LEVEL), name="ticket_escalation_level_max"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at", "id"], name="ticket_customer_idx"),
            models.Index(fields=["status", "resolution_due"], name="ticket_status_due_idx"),
            models.Index(fields=["status", "first_response_due"], name="ticket_status_response_idx"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_idx"),
            models.Index(fields=["team", "status"], name="ticket_team_idx"),
            models.Index(fields=["created_at", "id"], name="ticket_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in c.OPEN_STATUSES


class TicketMessage(models.Model):
    """A reply to the customer or an internal note on a ticket."""

    Kind = c.MessageKind

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(_("kind"), max_length=8, choices=c.MessageKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    body = models.TextField(_("text"))
    emailed_at = models.DateTimeField(_("emailed to the customer at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_message_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.kind}"


class Survey(models.Model):
    """A CSAT or NPS question sent to a customer after a ticket or an order, answered once through a signed link."""

    Kind = c.SurveyKind
    Channel = c.SurveyChannel

    kind = models.CharField(_("kind"), max_length=4, choices=c.SurveyKind.choices)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="surveys"
    )
    ticket = models.ForeignKey(
        Ticket, verbose_name=_("ticket"), null=True, blank=True, on_delete=models.SET_NULL, related_name="surveys"
    )
    # An order of cim.activities, by id only: orders live in another app and may be archived independently.
    order_id = models.PositiveBigIntegerField(_("order id"), null=True, blank=True)
    channel = models.CharField(_("sent by"), max_length=8, choices=c.SurveyChannel.choices)
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # SHA-256 of the link's token: only the newest link of a survey works, and a database copy reveals no link.
    token_digest = models.CharField(_("link digest"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sent by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sent_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    answer_ip = models.GenericIPAddressField(_("answered from"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True)
                | Q(kind=c.SurveyKind.CSAT, score__gte=1, score__lte=5)
                | Q(kind=c.SurveyKind.NPS, score__gte=0, score__lte=10),
                name="survey_score_in_range",
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True, score__isnull=True)
                | Q(answered_at__isnull=False, score__isnull=False),
                name="survey_answered_has_score",
            ),
            models.UniqueConstraint(
                fields=["ticket", "kind"], condition=Q(ticket__isnull=False), name="survey_one_per_ticket_and_kind"
            ),
            models.UniqueConstraint(
                fields=["order_id", "kind"], condition=Q(order_id__isnull=False), name="survey_one_per_order_and_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "answered_at", "id"], name="survey_customer_idx"),
            models.Index(fields=["answered_at", "kind"], name="survey_answered_idx"),
            models.Index(fields=["team", "answered_at"], name="survey_team_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"
