"""Keeping search documents in step with customers, in the same transaction as the change."""

from collections.abc import Iterable

from django.db import connection

from cim.core.blind_index import BlindIndexField
from cim.core.bulk import insert_rows
from cim.customers.models import Customer, Email, Phone
from cim.search.models import SearchDocument
from cim.search.tokens import document

BATCH = 5000
NAME_FIELDS = ("display_name", "family_name", "given_name", "alias", "english_name", "company")


def search_names(customer) -> list[str]:
    """The names a customer is found by; anything with the attributes of NAME_FIELDS will do."""
    return [
        customer.display_name,
        customer.family_name + customer.given_name,
        customer.alias,
        customer.english_name,
        customer.company,
    ]


def search_documents_write(rows: Iterable[tuple[int, str]]) -> None:
    """Store (customer id, `tokens.document(...)`) rows of customers that have no document yet: the bulk paths
    hold the values already and skip reading them back."""
    insert_rows(SearchDocument, ["customer", "tokens"], rows)


def search_index_remove(*, customer_ids: Iterable[int]) -> None:
    ids = list(customer_ids)
    for start in range(0, len(ids), BATCH):
        SearchDocument.objects.filter(pk__in=ids[start : start + BATCH]).delete()


def search_index_update(*, customer_ids: Iterable[int]) -> int:
    """Rebuild the documents of these customers from what is stored; returns how many were written."""
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
        rows = [
            (c.pk, document(names=search_names(c), phones=phones.get(c.pk, ()), emails=emails.get(c.pk, ())))
            for c in Customer.objects.filter(pk__in=chunk).only(*NAME_FIELDS).order_by("pk")
        ]
        search_index_remove(customer_ids=chunk)
        search_documents_write(rows)
        written += len(rows)
    return written


def search_index_rebuild() -> int:
    """Rebuild every customer's document and the phones', emails' and ID numbers' keys (after a change of the
    search key, or a restore)."""
    keys = [(Phone, "match_key"), (Email, "match_key")]
    keys += [(Customer, f.name) for f in Customer._meta.concrete_fields if isinstance(f, BlindIndexField)]
    for model, name in keys:
        field = model._meta.get_field(name)
        rows = list(model.objects.only(field.source).order_by())
        for row in rows:
            field.pre_save(row, add=False)
        model.objects.bulk_update(rows, [name], batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_document")
    ids = Customer.objects.order_by("pk").values_list("pk", flat=True)
    return search_index_update(customer_ids=ids.iterator(chunk_size=BATCH))
