"""Every choice list of tickets and surveys, in one place."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Status(models.TextChoices):
    NEW = "new", pgettext_lazy("ticket status", "New")
    IN_PROGRESS = "in_progress", pgettext_lazy("ticket status", "In progress")
    WAITING = "waiting", _("Waiting on customer")
    RESOLVED = "resolved", pgettext_lazy("ticket status", "Resolved")
    CLOSED = "closed", pgettext_lazy("ticket status", "Closed")
    REOPENED = "reopened", pgettext_lazy("ticket status", "Reopened")


OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.WAITING, Status.REOPENED)

# Status → the statuses a ticket may move to from it. Closed is final: a new complaint is a new ticket.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.NEW: (Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.CLOSED),
    Status.IN_PROGRESS: (Status.WAITING, Status.RESOLVED, Status.CLOSED),
    Status.WAITING: (Status.IN_PROGRESS, Status.RESOLVED, Status.CLOSED),
    Status.REOPENED: (Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.CLOSED),
    Status.RESOLVED: (Status.CLOSED, Status.REOPENED),
    Status.CLOSED: (),
}


class Priority(models.TextChoices):
    URGENT = "urgent", pgettext_lazy("ticket priority", "Urgent")
    HIGH = "high", pgettext_lazy("ticket priority", "High")
    NORMAL = "normal", pgettext_lazy("ticket priority", "Normal")
    LOW = "low", pgettext_lazy("ticket priority", "Low")


class Category(models.TextChoices):
    COMPLAINT = "complaint", _("Complaint")
    PRODUCT = "product", _("Product quality")
    DELIVERY = "delivery", _("Delivery")
    BILLING = "billing", _("Billing and refunds")
    AFTER_SALES = "after_sales", _("After-sales service")
    INQUIRY = "inquiry", _("Inquiry")
    SUGGESTION = "suggestion", _("Suggestion")
    OTHER = "other", _("Other")


class Channel(models.TextChoices):
    """Where a ticket came in."""

    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    WEB = "web", _("Web")
    WECHAT = "wechat", _("WeChat")
    IN_PERSON = "in_person", _("In person")
    API = "api", _("API")


class ResolutionCode(models.TextChoices):
    FIXED = "fixed", _("Fixed")
    ANSWERED = "answered", _("Question answered")
    REFUND = "refund", _("Refunded")
    REPLACEMENT = "replacement", _("Replaced")
    COMPENSATION = "compensation", _("Compensated")
    WORKAROUND = "workaround", _("Workaround given")
    NOT_REPRODUCIBLE = "not_reproducible", _("Could not reproduce")
    NO_RESPONSE = "no_response", _("No response from customer")
    DUPLICATE = "duplicate", _("Duplicate")
    INVALID = "invalid", _("Invalid or spam")
    OTHER = "other", _("Other")


class MessageKind(models.TextChoices):
    REPLY = "reply", _("Reply to the customer")
    NOTE = "note", _("Internal note")


class SurveyKind(models.TextChoices):
    CSAT = "csat", _("Satisfaction (CSAT, 1–5)")
    NPS = "nps", _("Recommendation (NPS, 0–10)")


SCORE_RANGE = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10)}


class SurveyChannel(models.TextChoices):
    """How a survey link is sent."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
