"""Keeping the search keys in step with customers, in the same transaction as the change."""

from collections.abc import Iterable

from cim.core.bulk import insert_rows
from cim.customers.models import Customer, Email, Phone
from cim.search.keys import customer_keys
from cim.search.models import SearchKey

BATCH = 5000
TEXT, HASH = SearchKey.Kind.TEXT.value, SearchKey.Kind.HASH.value


def _names(customer: Customer) -> list[str]:
    return [
        customer.display_name,
        customer.family_name + customer.given_name,
        customer.alias,
        customer.english_name,
        customer.company,
    ]


def search_index_update(*, customer_ids: Iterable[int]) -> int:
    """Rebuild the keys of these customers from what is stored; returns the number of keys written."""
    ids = list(customer_ids)
    written = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        phones: dict[int, list[str]] = {}
        for cid, number in Phone.objects.filter(customer_id__in=chunk).values_list("customer_id", "number"):
            phones.setdefault(cid, []).append(number)
        emails: dict[int, list[str]] = {}
        for cid, address in Email.objects.filter(customer_id__in=chunk).values_list("customer_id", "address"):
            emails.setdefault(cid, []).append(address)
        rows = []
        for customer in Customer.objects.filter(pk__in=chunk).only(
            "number", "display_name", "family_name", "given_name", "alias", "english_name", "company"
        ):
            text, hashed = customer_keys(
                names=_names(customer),
                phones=phones.get(customer.pk, ()),
                emails=emails.get(customer.pk, ()),
                number=customer.number,
            )
            rows += [(customer.pk, TEXT, k) for k in text]
            rows += [(customer.pk, HASH, k) for k in hashed]
        SearchKey.objects.filter(customer_id__in=chunk).delete()
        # In index order, so the inserts walk the (kind, key) B-tree instead of jumping around it.
        insert_rows(SearchKey, ["customer", "kind", "key"], sorted(rows, key=lambda row: (row[1], row[2])))
        written += len(rows)
    return written


def search_index_rebuild() -> int:
    """Rebuild every customer's keys (after a change of the search key, or a restore)."""
    ids = Customer.objects.order_by("pk").values_list("pk", flat=True)
    return search_index_update(customer_ids=ids.iterator(chunk_size=BATCH))
