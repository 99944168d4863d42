"""The real Segment Python SDK, pointed at a live CIM server: what existing integrations do, end to end."""

import pytest
from segment.analytics import Client

from cim.activities.models import BehaviourEvent
from cim.customers.models import Customer, ExternalId


@pytest.fixture
def sdk(live_server, write_key):
    """The SDK as a customer would configure it: only the host changes (it posts to <host>/v1/batch)."""

    def make(**options):
        errors = []
        client = Client(
            write_key, host=f"{live_server.url}/ingest", on_error=lambda e, batch: errors.append(e), **options
        )
        return client, errors

    return make


@pytest.mark.django_db(transaction=True)
def test_identify_track_and_page_arrive(sdk):
    client, errors = sdk(sync_mode=True)
    client.identify("u-42", {"name": "张三", "email": "zhang.san@example.com", "plan": "pro"}, anonymous_id="anon-1")
    client.track("u-42", "Order Completed", {"total": 199.5, "currency": "CNY"})
    client.page(anonymous_id="anon-1", name="Pricing", properties={"path": "/pricing"})

    customer = Customer.objects.get()
    assert customer.display_name == "张三"
    assert customer.emails.get().address == "zhang.san@example.com"
    assert ExternalId.objects.get(value="u-42").customer == customer
    events = {e.type: e for e in BehaviourEvent.objects.all()}
    assert set(events) == {"identify", "track", "page"}
    assert all(e.customer == customer for e in events.values())
    assert events["track"].properties == {"total": 199.5, "currency": "CNY"}
    assert events["page"].name == "Pricing"
    assert events["track"].context["library"]["name"] == "analytics-python"
    assert events["track"].channel == "website"  # the source's channel
    assert not errors


@pytest.mark.django_db(transaction=True)
def test_queued_gzip_batches_arrive_once(sdk):
    client, errors = sdk(gzip=True, upload_size=50)
    for i in range(120):
        client.track(f"u-{i % 3}", "Viewed Product", {"sku": f"SKU-{i}"}, message_id=f"view-{i}")
    client.flush()
    client.join()

    again, _errors = sdk(sync_mode=True)
    again.track("u-0", "Viewed Product", {"sku": "SKU-0"}, message_id="view-0")  # an SDK retry: same messageId

    assert BehaviourEvent.objects.filter(type="track").count() == 120
    assert not errors
