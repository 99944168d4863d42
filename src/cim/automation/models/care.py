from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cim.activities.models import Priority
from cim.automation.calendar import DateKind, Festival

# What a care plan can be for: the customer's own days, and the festivals.
OCCASION_CHOICES = [
    (DateKind.BIRTHDAY.value, DateKind.BIRTHDAY.label),
    (DateKind.LUNAR_BIRTHDAY.value, DateKind.LUNAR_BIRTHDAY.label),
    (DateKind.ANNIVERSARY.value, DateKind.ANNIVERSARY.label),
    *Festival.choices,
]
GIFT_OCCASION_CHOICES = [*OCCASION_CHOICES, ("other", _("Other"))]


class CareAction(models.TextChoices):
    GREETING = "greeting", _("Send a greeting")
    CALL_TASK = "call_task", _("Ask the owner to call")


class CarePlan(models.Model):
    """What to do for customers on an occasion: greet them from templates, or have their owners call."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    occasion = models.CharField(_("occasion"), max_length=30, choices=OCCASION_CHOICES)
    action = models.CharField(_("action"), max_length=12, choices=CareAction.choices, default=CareAction.GREETING)
    # Act this many days before the occasion (a call the day before, a card a week ahead).
    lead_days = models.PositiveSmallIntegerField(_("days ahead"), default=0)
    # The greeting in each language (one template per language, one channel); the template gives the purpose.
    templates = models.ManyToManyField(
        "automation.MessageTemplate", verbose_name=_("greeting templates"), blank=True, related_name="+"
    )
    # Only the members of this segment or list; everyone eligible when empty.
    segment = models.ForeignKey(
        "segments.Segment",
        verbose_name=_("segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    task_title = models.CharField(_("task title"), max_length=200, blank=True)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    is_active = models.BooleanField(_("active"), default=True)
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
        verbose_name = _("care plan")
        verbose_name_plural = _("care plans")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CareRun(models.Model):
    """What one plan did on one day: running it again that day adds only what is missing."""

    plan = models.ForeignKey(CarePlan, verbose_name=_("care plan"), on_delete=models.CASCADE, related_name="runs")
    day = models.DateField(_("day"))
    occasion_day = models.DateField(_("occasion day"))
    customers = models.PositiveIntegerField(_("customers"), default=0)
    queued = models.PositiveIntegerField(_("greetings queued"), default=0)
    suppressed = models.JSONField(_("greetings not sent, by reason"), default=dict, blank=True)
    tasks = models.PositiveIntegerField(_("call tasks created"), default=0)
    error = models.TextField(_("error"), blank=True)
    ran_at = models.DateTimeField(_("ran at"), auto_now=True)

    class Meta:
        verbose_name = _("care run")
        verbose_name_plural = _("care runs")
        ordering = ["-day", "plan"]
        constraints = [models.UniqueConstraint(fields=["plan", "day"], name="care_run_once_a_day")]

    def __str__(self) -> str:
        return f"{self.plan} {self.day}"


class CareTask(models.Model):
    """The call task made for a customer's occasion, under the same key a greeting would have: never made twice."""

    key = models.CharField(_("key"), max_length=200, unique=True)
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    plan = models.ForeignKey(CarePlan, verbose_name=_("care plan"), on_delete=models.CASCADE, related_name="+")
    follow_up = models.ForeignKey(
        "activities.FollowUp",
        verbose_name=_("follow-up"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("care task")
        verbose_name_plural = _("care tasks")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.key


class Gift(models.Model):
    """A gift or benefit given to a customer (a mooncake box, a coupon, a birthday discount): what, worth what,
    for which occasion, when and by whom."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="gifts"
    )
    description = models.CharField(_("gift or benefit"), max_length=200)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    occasion = models.CharField(_("occasion"), max_length=30, choices=GIFT_OCCASION_CHOICES, default="other")
    given_on = models.DateField(_("given on"))
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("given by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True)
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
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")
        ordering = ["-given_on", "-id"]
        indexes = [models.Index(fields=["customer", "-given_on"], name="gift_customer_idx")]

    def __str__(self) -> str:
        return self.description
