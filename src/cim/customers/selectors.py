"""Every read of customers that pages, exports and the API share; the user's scope is applied here."""

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, CustomerTag, Email, Phone, Tag
from cim.customers.numbering import is_valid_number, normalize_number


class InvalidNumber(ValueError):
    """A looked-up customer number does not have a valid shape or check digit."""


def customer_list(*, user, filters: CustomerFilter) -> QuerySet[Customer]:
    """The customers `user` may see that match `filters`, ready for a list page or an API page."""
    queryset = filters.apply(Customer.objects.visible_to(user))
    return queryset.select_related("owner", "team").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name")),
        Prefetch("phones", queryset=Phone.objects.filter(is_primary=True)),
        Prefetch("emails", queryset=Email.objects.filter(is_primary=True)),
    )


def customer_get(*, user, number: str) -> Customer:
    """One customer by number, within the user's scope. Raises InvalidNumber or Http404."""
    number = normalize_number(number)
    if not is_valid_number(number):
        raise InvalidNumber(_("“%(number)s” is not a valid customer number.") % {"number": number[:40]})
    customer = (
        Customer.objects.visible_to(user)
        .select_related("owner", "team")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")), "phones", "emails", "addresses")
        .filter(number=number)
        .first()
    )
    if customer is None:
        raise Http404(_("No customer with number %(number)s.") % {"number": number})
    return customer


def customer_tag_rows(*, customer: Customer) -> QuerySet[CustomerTag]:
    return CustomerTag.objects.filter(customer=customer).select_related("tag", "added_by")
