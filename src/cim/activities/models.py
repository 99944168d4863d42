from django.conf import settings
from django.db import models
from django.db.models import F, Q
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

    # anonymous_link_unique and anonymous_link_customer_idx lead with these: no index of their own.
    source = models.ForeignKey(
        "ingest.EventSource", verbose_name=_("event source"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=200)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="anonymous_links",
        db_index=False,
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


class Product(models.Model):
    """An item of the catalogue that order lines refer to by SKU."""

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=100, blank=True)
    price = models.DecimalField(_("price"), max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        indexes = [models.Index(fields=["category", "sku"], name="product_category_idx")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    """A purchase by a customer. `net_amount` is what the order is worth after refunds (0 when cancelled or unpaid):
    the one figure every total, report and analysis adds up."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending payment")
        PAID = "paid", _("Paid")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="orders",
        db_index=False,  # order_customer_idx leads with it
    )
    # The order number in the system it comes from (a shop, an ERP); unique within that system.
    number = models.CharField(_("order number"), max_length=64)
    system = models.CharField(_("source system"), max_length=50, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PAID)
    channel = models.CharField(_("sales channel"), max_length=50, blank=True)
    store = models.CharField(_("store"), max_length=100, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    ordered_at = models.DateTimeField(_("ordered at"))
    lines_amount = models.DecimalField(_("lines total"), max_digits=14, decimal_places=2, default=0)
    discount_amount = models.DecimalField(_("order discount"), max_digits=14, decimal_places=2, default=0)
    total_amount = models.DecimalField(_("total"), max_digits=14, decimal_places=2, default=0)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=14, decimal_places=2, default=0)
    net_amount = models.DecimalField(_("net amount"), max_digits=14, decimal_places=2, default=0)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    import_job = models.ForeignKey(
        "ingest.ImportJob", verbose_name=_("import"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "number"], name="order_number_unique"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0), name="order_refund_not_negative"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("total_amount")), name="order_refund_le_total"),
        ]
        indexes = [
            models.Index(fields=["customer", "ordered_at", "id"], name="order_customer_idx"),
            models.Index(fields=["ordered_at"], name="order_time_idx"),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One product on an order: quantity × unit price − discount."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # order_line_product_idx
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    name = models.CharField(_("product name"), max_length=200, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3, default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    discount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=0)
    amount = models.DecimalField(_("line total"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order", "id"]
        indexes = [models.Index(fields=["product"], name="order_line_product_idx")]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"


class Refund(models.Model):
    """Money given back on an order, in part or in full."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["order", "refunded_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return str(self.amount)


class Interaction(models.Model):
    """A call, meeting, visit, email, message or note with a customer, logged by a member of staff."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        MEETING = "meeting", _("Meeting")
        VISIT = "visit", _("Visit")
        EMAIL = "email", _("Email")
        WECHAT = "wechat", _("WeChat")
        SMS = "sms", _("SMS")
        NOTE = "note", _("Note")

    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")
        NONE = "", _("—")

    class Outcome(models.TextChoices):
        NONE = "", _("—")
        REACHED = "reached", _("Reached")
        NO_ANSWER = "no_answer", _("No answer")
        LEFT_MESSAGE = "left_message", _("Left a message")
        INTERESTED = "interested", _("Interested")
        NOT_INTERESTED = "not_interested", _("Not interested")
        FOLLOW_UP = "follow_up", _("Follow-up needed")
        RESOLVED = "resolved", _("Resolved")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="interactions"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices, blank=True)
    occurred_at = models.DateTimeField(_("time"))
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), null=True, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("details"), blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, blank=True)
    # No constraints in the database, as on Attachment.interaction.
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("staff present"), blank=True, related_name="+", db_constraint=False
    )
    # The customer's people who took part (an organisation's buyer, a family member): names as given.
    contacts = models.JSONField(_("customer contacts present"), default=list, blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("logged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    import_job = models.ForeignKey(
        "ingest.ImportJob", verbose_name=_("import"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "occurred_at", "id"], name="interaction_customer_idx"),
            models.Index(fields=["logged_by", "occurred_at"], name="interaction_staff_idx"),
            # "N days since the last contact" starts from the interactions of one day (cim.automation.calendar).
            models.Index(fields=["occurred_at"], name="interaction_time_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or self.get_kind_display()


class Attachment(models.Model):
    """A file attached to an interaction, stored under a random name outside the static files and served only
    to staff who may see its customer."""

    # No constraint in the database: interactions are partitioned by month on PostgreSQL (cim.core.partitions),
    # and a key into a partitioned table must name its partition column too. Django cascades the delete itself.
    interaction = models.ForeignKey(
        Interaction,
        verbose_name=_("interaction"),
        on_delete=models.CASCADE,
        related_name="attachments",
        db_constraint=False,
    )
    file = models.FileField(_("file"), upload_to="attachments/%Y/%m/")
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["interaction", "id"]

    def __str__(self) -> str:
        return self.filename


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class CallbackPlan(models.Model):
    """Recurring call-backs (回访): every `every_days`, a follow-up for each customer of a saved list who has had
    none from this plan for that long."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    saved_view = models.ForeignKey(
        "customers.SavedView", verbose_name=_("customers (saved view)"), on_delete=models.PROTECT, related_name="+"
    )
    every_days = models.PositiveIntegerField(_("every (days)"))
    title = models.CharField(_("task title"), max_length=200)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    # Who gets the task when the customer has no owner.
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("default owner"), on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("call-back plan")
        verbose_name_plural = _("call-back plans")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FollowUp(models.Model):
    """A follow-up task (跟进): something someone must do for a customer by a date."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="follow_ups"
    )
    title = models.CharField(_("title"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    due_at = models.DateTimeField(_("due"))
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="follow_ups"
    )
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    plan = models.ForeignKey(
        CallbackPlan,
        verbose_name=_("call-back plan"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
    )
    # No constraint in the database, as on Attachment.interaction.
    interaction = models.ForeignKey(
        Interaction,
        verbose_name=_("interaction"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
        db_constraint=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["owner", "status", "due_at"], name="follow_up_owner_idx"),
            models.Index(fields=["customer", "created_at", "id"], name="follow_up_customer_idx"),
            models.Index(fields=["remind_at"], condition=Q(reminded_at__isnull=True), name="follow_up_remind_idx"),
            models.Index(fields=["plan", "customer"], name="follow_up_plan_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Notification(models.Model):
    """A message for one member of staff, shown in the app (a reminder, an escalation, a mention)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(_("title"), max_length=200)
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "created_at"], name="notification_user_idx")]

    def __str__(self) -> str:
        return self.title
