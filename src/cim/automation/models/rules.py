"""Automation rules (自动化): a trigger, conditions in the segment rule language, and steps run per customer."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Rule(models.Model):
    """When something happens to a customer (or on a date) and the conditions hold, run the steps for them."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    # {"event": "customer.tag_added", "tag": "VIP"} or {"event": "date", "kind": "birthday"}: see cim.automation.rules.
    trigger = models.JSONField(_("trigger"), default=dict)
    # A rule tree of the segment rule language (cim.segments.rules); an empty group holds every customer.
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    # The ordered steps; a branch holds its own `then` and `else` lists of steps.
    steps = models.JSONField(_("steps"), default=list)
    is_active = models.BooleanField(_("active"), default=False)
    # Loop guards: how many rule runs may cause one another, and how often one customer may run this rule.
    max_depth = models.PositiveSmallIntegerField(_("maximum depth"), default=3)
    rate_minutes = models.PositiveIntegerField(_("at most once per customer every (minutes)"), default=60)
    # The last day a date trigger was evaluated, so the hourly job selects each day's customers once.
    dates_done_on = models.DateField(_("dates evaluated on"), null=True, blank=True)
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
        verbose_name = _("automation rule")
        verbose_name_plural = _("automation rules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RuleRun(models.Model):
    """One customer going through a rule's steps, from the event (or date) that started it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        WAITING = "waiting", _("Waiting")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped by the loop guard")

    rule = models.ForeignKey(Rule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="runs")
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="rule_runs"
    )
    # Not a foreign key: events are pruned after a month, runs are kept.
    event_id = models.BigIntegerField(_("event"), null=True, blank=True)
    # What started the run, unique per rule and customer (`event:<id>`, `date:<day>`): recording it twice is a no-op.
    trigger_key = models.CharField(_("trigger"), max_length=60)
    depth = models.PositiveSmallIntegerField(_("depth"), default=1)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    # The index of the next step in the rule's compiled program (branches flattened into jumps).
    current_step = models.PositiveIntegerField(_("current step"), default=0)
    next_at = models.DateTimeField(_("next step at"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("rule run")
        verbose_name_plural = _("rule runs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "customer", "trigger_key"], name="rule_run_once_per_trigger")
        ]
        indexes = [
            models.Index(fields=["next_at"], condition=Q(status__in=["pending", "waiting"]), name="rule_run_due_idx"),
            models.Index(fields=["rule", "customer", "created_at"], name="rule_run_rate_idx"),
            models.Index(fields=["customer", "created_at"], name="rule_run_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.customer_id}:{self.trigger_key}"


class RuleStep(models.Model):
    """What one step of a run did: written in the same transaction as the step's effect, so it happens once."""

    class Outcome(models.TextChoices):
        DONE = "done", _("Done")
        SKIPPED = "skipped", _("Nothing to do")
        WAITING = "waiting", _("Waiting")
        BRANCH_THEN = "then", _("Condition held")
        BRANCH_ELSE = "else", _("Condition did not hold")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(RuleRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField(_("step"))
    action = models.CharField(_("action"), max_length=20)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    # Ids, names and counts only, never personal values.
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rule step")
        verbose_name_plural = _("rule steps")
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="rule_step_once")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.index}:{self.action}"
