"""What analyses leave behind for people to act on: each customer's scores, clusters, product rules, the
sentiment of feedback, acquisition costs and scheduled reports."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cim.customers import choices as c


class CustomerScore(models.Model):
    """One customer's analytics results, refreshed set-based; what segment rules, lists and the customer page read."""

    customer = models.OneToOneField(
        "customers.Customer",
        verbose_name=_("customer"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="score",
    )
    orders = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2, default=0)
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    recency_score = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    frequency_score = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    monetary_score = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=24, blank=True)
    value_segment = models.CharField(_("RFM value segment"), max_length=24, blank=True)
    stage_since = models.DateTimeField(_("in this lifecycle stage since"), null=True, blank=True)
    p_alive = models.FloatField(_("probability still active"), null=True, blank=True)
    expected_purchases = models.FloatField(_("expected purchases next year"), null=True, blank=True)
    clv = models.DecimalField(_("lifetime value, next year"), max_digits=14, decimal_places=2, null=True, blank=True)
    churn_risk = models.FloatField(_("churn risk"), null=True, blank=True)
    # Reason keys with their weights and the values their texts show, largest first:
    # [["recency", 0.4, {"days": 140, "gap": 30}], ...] (cim.analytics.churn.REASONS).
    churn_reasons = models.JSONField(_("churn reasons"), default=list, blank=True)
    # The latest follow-up made for the churn risk: while it is open, the customer gets no other.
    churn_follow_up = models.ForeignKey(
        "activities.FollowUp",
        verbose_name=_("churn follow-up"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"), null=True, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed at"), auto_now=True)

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        ordering = ["customer"]
        # Segment rules on spend and value segment start from the few scores that match. No more: a refresh from
        # nothing writes every row twice, and every index costs it (bench/RESULTS.md, PostgreSQL at scale). An RFM
        # segment or a cluster holds a tenth of the customers or more, and the churn list sorts every score above
        # its floor by what is at stake, which no index on the risk serves.
        indexes = [
            models.Index(fields=["total_spent"], name="score_total_spent_idx"),
            models.Index(fields=["value_segment"], name="score_value_segment_idx"),
        ]

    def __str__(self) -> str:
        return str(self.customer_id)


class OrderTotalsDue(models.Model):
    """A customer whose order totals in `CustomerScore` are to be summed again from the orders, once `due_at` has
    come. Triggers on the orders table write these rows (migration 0003), so every change to an order marks its
    customer, whichever path made it: a service, an import, a merge, an erasure or plain SQL."""

    # No foreign key: the mark outlives a customer deleted with their orders, and the refresh passes over it.
    customer_id = models.BigIntegerField(_("customer"), primary_key=True)
    due_at = models.DateTimeField(_("due at"))

    class Meta:
        verbose_name = _("order totals due")
        verbose_name_plural = _("order totals due")

    def __str__(self) -> str:
        return f"{self.customer_id} @ {self.due_at:%Y-%m-%d %H:%M}"


class Cluster(models.Model):
    """One customer cluster of the latest clustering run, with what sets it apart."""

    number = models.PositiveSmallIntegerField(_("number"), unique=True)
    size = models.PositiveIntegerField(_("customers"))
    # The cluster's mean of each feature, and the whole population's, for the plain-language description.
    centre = models.JSONField(_("centre"), default=dict)
    population = models.JSONField(_("population means"), default=dict)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")
        ordering = ["number"]

    def __str__(self) -> str:
        return str(self.number)


class AssociationRule(models.Model):
    """Products bought together: customers who bought `antecedents` also bought `consequents`."""

    antecedents = models.JSONField(_("if bought"))  # product ids, sorted
    consequents = models.JSONField(_("then also"))
    support = models.FloatField(_("support"))
    confidence = models.FloatField(_("confidence"))
    lift = models.FloatField(_("lift"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("association rule")
        verbose_name_plural = _("association rules")
        ordering = ["-lift", "-confidence", "id"]

    def __str__(self) -> str:
        return f"{self.antecedents} → {self.consequents}"


class PopularProduct(models.Model):
    """A product among the most bought of its category, by how many customers bought it: the fallback of
    recommendations, computed with the association rules so no page has to count orders."""

    category = models.CharField(_("category"), max_length=100)
    product = models.ForeignKey(
        "activities.Product", verbose_name=_("product"), on_delete=models.CASCADE, related_name="+"
    )
    buyers = models.PositiveIntegerField(_("customers who bought it"))
    place = models.PositiveSmallIntegerField(_("place"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("popular product")
        verbose_name_plural = _("popular products")
        ordering = ["category", "place"]
        constraints = [models.UniqueConstraint(fields=["category", "place"], name="popular_product_place_unique")]

    def __str__(self) -> str:
        return f"{self.category} #{self.place}"


class FeedbackSentiment(models.Model):
    """The sentiment and keywords of one piece of customer feedback (a ticket, a survey comment, a note)."""

    class Source(models.TextChoices):
        TICKET = "ticket", _("Ticket")
        SURVEY = "survey", _("Survey comment")
        INTERACTION = "interaction", _("Interaction note")

    class Label(models.TextChoices):
        POSITIVE = "positive", pgettext_lazy("sentiment", "Positive")
        NEUTRAL = "neutral", pgettext_lazy("sentiment", "Neutral")
        NEGATIVE = "negative", pgettext_lazy("sentiment", "Negative")

    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    object_id = models.PositiveBigIntegerField(_("object id"))
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="feedback_sentiments"
    )
    language = models.CharField(_("language"), max_length=8)
    label = models.CharField(_("sentiment"), max_length=8, choices=Label.choices)
    score = models.FloatField(_("score"))  # -1 (negative) … 1 (positive)
    keywords = models.JSONField(_("keywords"), default=list)
    topic = models.CharField(_("topic"), max_length=50, blank=True)
    written_at = models.DateTimeField(_("written at"))
    analysed_at = models.DateTimeField(_("analysed at"), auto_now=True)

    class Meta:
        verbose_name = _("feedback sentiment")
        verbose_name_plural = _("feedback sentiments")
        ordering = ["-written_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "object_id"], name="feedback_sentiment_unique_source"),
        ]
        indexes = [
            models.Index(fields=["customer", "written_at"], name="sentiment_customer_idx"),
            models.Index(fields=["label", "written_at"], name="sentiment_label_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.object_id}"


class AcquisitionCost(models.Model):
    """What winning customers through one channel cost in one month, for CAC."""

    channel = models.CharField(_("channel"), max_length=20, choices=c.SourceChannel.choices)
    month = models.DateField(_("month"))  # the first day of the month
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("acquisition cost")
        verbose_name_plural = _("acquisition costs")
        ordering = ["-month", "channel"]
        constraints = [models.UniqueConstraint(fields=["channel", "month"], name="acquisition_cost_unique_month")]

    def __str__(self) -> str:
        return f"{self.channel} {self.month:%Y-%m}"


class ReportSchedule(models.Model):
    """A report the worker builds and e-mails on a schedule."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly (Mondays)")
        MONTHLY = "monthly", _("Monthly (the 1st)")

    class Format(models.TextChoices):
        XLSX = "xlsx", _("Excel (XLSX)")
        PDF = "pdf", _("PDF")

    name = models.CharField(_("name"), max_length=100)
    report = models.CharField(_("report"), max_length=30)
    format = models.CharField(_("format"), max_length=4, choices=Format.choices, default=Format.XLSX)
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    recipients = models.JSONField(_("recipients"), default=list)  # e-mail addresses
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    language = models.CharField(_("language"), max_length=8, default="zh-hans")
    is_active = models.BooleanField(_("active"), default=True)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    # The period (`2026-12-03`, `2026-W49`, `2026-12`) claimed before sending: a period is sent at most once, even
    # when a worker dies mid-run. Cleared back only when building or sending failed.
    last_period = models.CharField(_("last period sent"), max_length=10, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="report_schedules"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("scheduled report")
        verbose_name_plural = _("scheduled reports")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
