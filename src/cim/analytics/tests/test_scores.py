"""Customer scores: order totals and RFM stored per customer, only what changed rewritten, refunds reflected."""

from decimal import Decimal

from cim.activities.history_schemas import RefundInput
from cim.activities.orders import order_refund
from cim.analytics.models import CustomerScore
from cim.analytics.scores import scores_refresh
from cim.customers.tests.factories import make_customer
from cim.segments.tests.test_rules import buy


def test_totals_and_rfm_are_stored_and_only_changes_rewritten(admin_user):
    often = make_customer(admin_user, display_name="常客")
    once = make_customer(admin_user, display_name="一次")
    never = make_customer(admin_user, display_name="没买")
    for days in (2, 30, 60):
        buy(often, admin_user, days, "100")
    [order] = [buy(once, admin_user, 300, "50.5")]

    run = scores_refresh()
    assert (run.customers, run.changed) == (2, 2)
    rows = {s.customer_id: s for s in CustomerScore.objects.all()}
    assert set(rows) == {often.pk, once.pk}
    assert (rows[often.pk].orders, rows[often.pk].total_spent) == (3, Decimal("300.00"))
    assert (rows[once.pk].orders, rows[once.pk].total_spent) == (1, Decimal("50.50"))
    assert rows[often.pk].last_order_at > rows[often.pk].first_order_at
    # Two customers: the recent, frequent one scores higher on each of R, F and M.
    assert rows[often.pk].recency_score > rows[once.pk].recency_score
    assert rows[often.pk].rfm_segment and rows[once.pk].value_segment
    assert scores_refresh().changed == 0

    order_refund(order=order, data=RefundInput(), actor=admin_user)
    assert scores_refresh().changed >= 1
    gone = CustomerScore.objects.get(customer=once)
    assert (gone.orders, gone.total_spent, gone.last_order_at, gone.rfm_segment) == (0, 0, None, "")
    assert not CustomerScore.objects.filter(customer=never).exists()
