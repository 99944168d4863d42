"""Reads of the churn scores that the at-risk page, its download, the API and the customer page share; the user's
customer scope (`Customer.objects.visible_to`, as on the customer list) is applied here."""

from django.db.models import BigIntegerField, F, FloatField, QuerySet
from django.db.models.functions import Cast, Coalesce

from cim.analytics.churn import reason_texts
from cim.analytics.models import CustomerScore
from cim.customers.models import Customer

# Listed from here by default: more likely to stop buying than not.
AT_RISK = 0.5
RISK_CHOICES = (0.3, 0.5, 0.7, 0.9)


def churn_list(*, user, mine: bool = False, min_risk: float = AT_RISK) -> QuerySet[CustomerScore]:
    """The scored customers `user` sees at `min_risk` or above (only their own with `mine`), most at stake first:
    risk × value, the value being the 12-month CLV where the model was fitted, else the total spent."""
    scores = CustomerScore.objects.filter(
        churn_risk__gte=min_risk, customer__merged_into__isnull=True
    ).exclude(customer__status=Customer.Status.ARCHIVED)  # fmt: skip
    visible = Customer.objects.visible_to(user)
    if visible.query.is_empty():
        return scores.none()
    if visible.query.has_filters():
        scores = scores.filter(customer__in=visible.values("pk"))
    if mine:
        scores = scores.filter(customer__owner=user)
    value = Coalesce(F("clv"), F("total_spent"))
    # A whole number (cents at stake) to sort on: API cursors carry integers exactly, not floats.
    stake = Cast(F("churn_risk") * Cast(value, FloatField()) * 100, BigIntegerField())
    return (
        scores.annotate(value=value, stake=stake)
        .select_related("customer", "customer__owner", "churn_follow_up")
        .order_by("-stake", "customer_id")
    )


def churn_of_customer(*, customer: Customer) -> CustomerScore | None:
    """The customer's churn score, for the customer page (whose view already checked the user sees them)."""
    return (
        CustomerScore.objects.filter(customer=customer, churn_risk__isnull=False)
        .select_related("churn_follow_up")
        .first()
    )


def churn_reason_texts(score: CustomerScore) -> list[str]:
    return reason_texts(score.churn_reasons)
