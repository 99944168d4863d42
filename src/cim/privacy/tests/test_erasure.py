import json

import pytest
from django.core import serializers
from django.core.exceptions import ValidationError

from cim.activities.models import Attachment, BehaviourEvent, Interaction, Order
from cim.audit.models import FieldChange
from cim.core.signals import database_restored
from cim.customers.models import Address, Customer, Email, Phone
from cim.ingest.models import FormSubmission
from cim.privacy.erasure import customer_erase, tombstone_file, tombstones_replay
from cim.privacy.models import Consent, ErasureTombstone
from cim.privacy.tests.helpers import CANARIES, database_hits, make_canary
from cim.search.models import SearchDocument
from cim.search.services import search_documents_write
from cim.service.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def _snapshot(customer) -> tuple[str, list[tuple[int, str]]]:
    """The customer's rows as a backup would hold them, and its search document."""
    objects = [
        customer,
        *Phone.objects.filter(customer=customer),
        *Email.objects.filter(customer=customer),
        *Address.objects.filter(customer=customer),
        *Interaction.objects.filter(customer=customer),
        *BehaviourEvent.objects.filter(customer=customer),
        *FormSubmission.objects.filter(customer=customer),
        *Consent.objects.filter(customer=customer),
        *Ticket.objects.filter(customer=customer),
        *FieldChange.objects.all(),
    ]
    documents = list(SearchDocument.objects.filter(pk=customer.pk).values_list("pk", "tokens"))
    return serializers.serialize("json", objects), documents


def _restore(snapshot) -> None:
    """Put the rows back as they were before the erasure, tombstone table included (it is in the backup too)."""
    data, documents = snapshot
    for obj in serializers.deserialize("json", data):
        obj.save()
    SearchDocument.objects.filter(pk__in=[pk for pk, _ in documents]).delete()
    search_documents_write(documents)
    ErasureTombstone.objects.all().delete()


def test_an_erased_canary_leaves_no_trace_in_the_database_even_after_a_restore(admin_user):
    customer = make_canary(admin_user)
    order_count = Order.objects.count()
    # Phones, emails, streets and form submissions are encrypted at rest (docs/encryption.md): never in plaintext.
    encrypted = {CANARIES[k] for k in ("phone", "email", "street", "form")}
    hits = set(database_hits(CANARIES.values()))
    assert hits >= set(CANARIES.values()) - {CANARIES["attachment"]} - encrypted and not hits & encrypted
    attachment_path = Attachment.objects.get().file.path
    snapshot = _snapshot(customer)

    customer_erase(customer=customer, actor=admin_user, reason="用户要求删除")

    assert database_hits(CANARIES.values()) == {}
    customer.refresh_from_db()
    assert customer.display_name == f"Erased customer {customer.number}" or customer.display_name.startswith(
        "已删除客户"
    )
    assert not Phone.objects.filter(customer=customer).exists()
    assert not Attachment.objects.exists()
    import os

    assert not os.path.exists(attachment_path)
    assert Order.objects.count() == order_count
    tombstone = ErasureTombstone.objects.get()
    assert (tombstone.customer_id, tombstone.number) == (customer.pk, customer.number)
    assert json.loads(tombstone_file().read_text().splitlines()[0])["customer_id"] == customer.pk

    _restore(snapshot)
    assert database_hits(CANARIES.values()) != {}, "the restore put the personal data back"

    database_restored.send(sender=None)

    assert database_hits(CANARIES.values()) == {}
    assert ErasureTombstone.objects.filter(customer_id=customer.pk).exists()


def test_erasure_keeps_aggregates_and_needs_a_reason_and_the_right(admin_user, users):
    from cim.activities.history_schemas import OrderInput
    from cim.activities.orders import order_create
    from cim.customers.services import PermissionDenied
    from cim.customers.tests.factories import make_customer

    customer = make_customer(admin_user, display_name="李四")
    order = order_create(
        customer=customer, data=OrderInput(lines=[{"name": "茶", "unit_price": "88"}]), actor=admin_user
    )
    with pytest.raises(PermissionDenied):
        customer_erase(customer=customer, actor=users["manager"], reason="x")
    with pytest.raises(ValidationError):
        customer_erase(customer=customer, actor=admin_user, reason=" ")

    customer_erase(customer=customer, actor=admin_user, reason="request")

    order.refresh_from_db()
    assert order.customer_id == customer.pk and str(order.net_amount) == "88.00"
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_replay_is_idempotent(admin_user):
    customer = make_canary(admin_user)
    customer_erase(customer=customer, actor=admin_user, reason="r")
    assert tombstones_replay() == 1
    assert tombstones_replay() == 1
    assert database_hits(CANARIES.values()) == {}
