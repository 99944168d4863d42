"""Every read of customers that pages, exports and the API share; the user's scope is applied here."""

from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

from cim.accounts.roles import Perm
from cim.core.blind_index import blind_index
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer, CustomerTag, CustomFieldDefinition, Email, Phone, SavedView, Tag
from cim.customers.numbering import is_valid_number, normalize_number
from cim.customers.services import ReadOnlyShare
from cim.customers.sharing_selectors import customer_changeable
from cim.search.selectors import search_count_order


class InvalidNumber(ValueError):
    """A looked-up customer number does not have a valid shape or check digit."""


def customer_list(*, user, filters: CustomerFilter) -> QuerySet[Customer]:
    """The customers `user` may see that match `filters`, ready for a list page or an API page."""
    customers = Customer.objects.shared_with(user) if filters.shared else Customer.objects.visible_to(user)
    queryset = filters.apply(customers)
    # Into plain lists (`tag_list`, `primary_phones`, `primary_emails`): a related manager per row and relation
    # costs more than the page's own query (13 ms against 6 for 25 rows).
    return queryset.select_related("owner", "team").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"), to_attr="tag_list"),
        Prefetch("phones", queryset=Phone.objects.filter(is_primary=True), to_attr="primary_phones"),
        Prefetch("emails", queryset=Email.objects.filter(is_primary=True), to_attr="primary_emails"),
    )


def customer_get(*, user, number: str, for_change: bool = False) -> Customer:
    """One customer by number, within the user's scope or shared with their team. Raises InvalidNumber or Http404;
    `for_change` raises ReadOnlyShare (a 403) for a customer the user sees only through a read share."""
    number = normalize_number(number)
    if not is_valid_number(number):
        raise InvalidNumber(_("“%(number)s” is not a valid customer number.") % {"number": number[:40]})
    customer = Customer.objects.select_related("owner", "team").filter(number=number).first()
    if customer is None or not customer_visible(user=user, customer=customer):
        raise Http404(_("No customer with number %(number)s.") % {"number": number})
    if for_change and not customer_changeable(user=user, customer=customer):
        raise ReadOnlyShare(Perm.CUSTOMER_CHANGE)
    prefetch_related_objects(
        [customer], Prefetch("tags", queryset=Tag.objects.order_by("name")), "phones", "emails", "addresses"
    )
    return customer


def customer_visible(*, user, customer: Customer) -> bool:
    """Whether `user` sees this loaded customer: its scope tested in Python first, as most look-ups are of customers
    in scope (the scope's condition costs more to build than the query takes); the shares then, in a query."""
    if Customer.objects.scope_holds(user, customer):
        return True
    return Customer.objects.visible_to(user).filter(pk=customer.pk).exists()


def customer_ids_by_contact(*, kind: str, values: list[str]) -> dict[str, set[int]]:
    """The customers holding each of these phones (E.164, `kind="phone"`) or emails (`kind="email"`), found
    through their match keys, so it keeps working when the values are encrypted. Values nobody holds are absent."""
    model = Phone if kind == "phone" else Email
    by_key = {blind_index(kind, value): value for value in values}
    found: dict[str, set[int]] = {}
    rows = model.objects.filter(match_key__in=list(by_key)).order_by().values_list("match_key", "customer_id")
    for key, customer_id in rows:
        found.setdefault(by_key[key], set()).add(customer_id)
    return found


def customer_tag_rows(*, customer: Customer) -> QuerySet[CustomerTag]:
    return CustomerTag.objects.filter(customer=customer).select_related("tag", "added_by")


def customer_ids_visible(*, user, ids, action: str = "view") -> list[int]:
    """Those of `ids` the user may see (any status) or, with `action="change"`, change: e.g. the rows ticked for
    bulk tagging, where customers shared read-only are left out."""
    visible = Customer.objects.visible_to(user, action=action)
    return list(visible.filter(pk__in=list(ids)).values_list("pk", flat=True))


def tag_list(*, with_counts: bool = False) -> QuerySet[Tag]:
    tags = Tag.objects.order_by("name")
    return tags.annotate(customer_count=Count("customertag")) if with_counts else tags


def custom_field_definitions(*, active_only: bool = True) -> QuerySet[CustomFieldDefinition]:
    definitions = CustomFieldDefinition.objects.order_by("position", "key")
    return definitions.filter(is_active=True) if active_only else definitions


def saved_view_list(*, user) -> QuerySet[SavedView]:
    """The user's own saved views and those others shared."""
    return SavedView.objects.filter(Q(user=user) | Q(is_shared=True)).select_related("user").order_by("name", "id")


COUNT_CAP = 100


def customer_count(queryset: QuerySet, *, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows a customer list has, counted up to `cap`: (count, whether there are more).

    An exact count reads every matching row: 0.2–1.5 s for the whole list or a common word at a million
    customers, far more than the page. Lists show "100+" instead, as Salesforce's list views show "50+";
    counting to 1,000 among 张's 47k matches would already take 70–130 ms.
    """
    counted = queryset.order_by(*search_count_order(queryset)).values("pk")[: cap + 1].count()
    return min(counted, cap), counted > cap


class CappedPaginator(Paginator):
    """Pages of a customer list, counted only some pages past the current one (see `customer_count`).

    An exact count of a filtered million-row list costs more than the page itself (170 ms for
    `value_tier=vip&region=east`); counting to `cap` keeps the next pages and the "1,000+" total exact enough.
    """

    PAGES_AHEAD = 10
    MIN_CAP = 1000

    def __init__(self, object_list: QuerySet, per_page: int, *, page: str | None):
        super().__init__(object_list, per_page)
        try:
            wanted = max(1, int(page or 1))
        except ValueError:
            wanted = 1
        self.cap = max(self.MIN_CAP, (wanted + self.PAGES_AHEAD) * per_page)

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        return customer_count(self.object_list, cap=self.cap)

    @cached_property
    def count(self) -> int:
        return self._counted[0]

    @property
    def has_more(self) -> bool:
        """Whether more customers match than `count` says."""
        return self._counted[1]
