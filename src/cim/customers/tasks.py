"""Background work on customers, run by `cim worker`."""

from django_tasks import task

from cim.accounts.models import User
from cim.customers.filters import CustomerFilter
from cim.customers.models import Customer
from cim.customers.selectors import customer_list
from cim.customers.services import customers_tag

BATCH = 2000


@task()
def customers_tag_matching(*, user_id: int, filters: dict, add: list[str], remove: list[str]) -> int:
    """Tag every customer the user sees that matches `filters` (the list page's "all matching" action)."""
    user = User.objects.get(pk=user_id)
    matching = customer_list(user=user, filters=CustomerFilter(**filters))
    # Customers shared with the user's team read-only are left as they are.
    ids = list(
        matching.filter(pk__in=Customer.objects.visible_to(user, action="change").values("pk")).values_list(
            "pk", flat=True
        )
    )
    changed = 0
    for start in range(0, len(ids), BATCH):
        changed += customers_tag(customer_ids=ids[start : start + BATCH], add=add, remove=remove, actor=user)
    return changed
