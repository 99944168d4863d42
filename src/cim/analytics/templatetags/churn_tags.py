"""`{% customer_churn customer %}`: the customer page's churn card (risk, reasons, the open follow-up), when scored."""

from django import template

from cim.analytics.churn_selectors import churn_of_customer, churn_reason_texts

register = template.Library()


@register.inclusion_tag("analytics/_customer_churn.html")
def customer_churn(customer) -> dict:
    score = churn_of_customer(customer=customer)
    if score is None:
        return {"score": None}
    return {"score": score, "reasons": churn_reason_texts(score)}
