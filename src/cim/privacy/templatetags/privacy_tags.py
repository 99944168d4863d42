"""`{% customer_privacy customer %}`: the customer page's consent and privacy card."""

from functools import lru_cache

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import get_language, override

from cim.accounts.roles import Perm, has_perm
from cim.privacy.forms import ConsentForm
from cim.privacy.models import ErasureTombstone
from cim.privacy.selectors import consent_ledger, consent_state, is_restricted, request_list

register = template.Library()
LEDGER_SHOWN = 50


@register.inclusion_tag("privacy/_customer_privacy.html", takes_context=True)
def customer_privacy(context, customer) -> dict:
    user = context["request"].user
    manage = has_perm(user, Perm.PRIVACY_MANAGE)
    ledger = list(consent_ledger(customer=customer, limit=LEDGER_SHOWN))
    whole = len(ledger) < LEDGER_SHOWN  # then the current state can be read off the ledger, with no query of its own
    return {
        "request": context["request"],
        "csrf_token": context.get("csrf_token"),
        "customer": customer,
        "state": consent_state(customer=customer, ledger=ledger if whole else None),
        "ledger": ledger,
        "restricted": is_restricted(customer),
        "erased": ErasureTombstone.objects.filter(customer_id=customer.pk).first(),
        "requests": request_list(customer=customer)[:10] if manage else [],
        "can_record": has_perm(user, Perm.CUSTOMER_CHANGE),
        "can_manage": manage,
        "consent_fields": _blank_consent_fields(get_language()),
    }


@lru_cache(maxsize=16)
def _blank_consent_fields(language: str | None) -> SafeString:
    """The empty consent form's fields, the same on every customer page of a language: rendered once per process
    (five widgets through Django's form templates cost 3 ms of each page)."""
    with override(language):
        return render_to_string("privacy/_consent_fields.html", {"form": ConsentForm()})
