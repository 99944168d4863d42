"""Order totals kept per customer: every path that changes an order marks its customer, the refresh sums only
the marked customers, and the sums equal a full count of the orders."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from cim.activities.history_schemas import OrderInput, RefundInput
from cim.activities.models import Order
from cim.activities.orders import order_cancel, order_create, order_refund
from cim.analytics.models import CustomerScore, OrderTotalsDue
from cim.analytics.totals import order_totals_update
from cim.customers.tests.factories import make_customer
from cim.quality.merge import customer_merge, customer_unmerge
from cim.segments.tests.test_rules import buy


def due() -> set[int]:
    return set(OrderTotalsDue.objects.filter(due_at__lte=timezone.now()).values_list("customer_id", flat=True))


def totals(customer) -> tuple[int, Decimal]:
    score = CustomerScore.objects.get(customer=customer)
    return score.orders, score.total_spent


def test_services_mark_their_customer_and_only_marked_customers_are_summed(admin_user):
    fang = make_customer(admin_user, display_name="王芳")
    lei = make_customer(admin_user, display_name="李雷")
    first = buy(fang, admin_user, 10, "100")
    buy(lei, admin_user, 20, "80")
    assert due() == {fang.pk, lei.pk}
    assert order_totals_update() == 2
    assert (totals(fang), totals(lei)) == ((1, Decimal("100.00")), (1, Decimal("80.00")))
    assert due() == set() and order_totals_update() == 0

    buy(fang, admin_user, 1, "50")
    assert due() == {fang.pk}
    order_totals_update()
    assert totals(fang) == (2, Decimal("150.00"))

    order_refund(order=first, data=RefundInput(), actor=admin_user)
    order_totals_update()
    assert totals(fang) == (1, Decimal("50.00"))
    order_cancel(order=Order.objects.get(customer=lei), actor=admin_user)
    order_totals_update()
    lei_score = CustomerScore.objects.get(customer=lei)
    assert (lei_score.orders, lei_score.total_spent, lei_score.last_order_at, lei_score.rfm_segment) == (0, 0, None, "")


def test_plain_sql_marks_the_customer_unless_the_totals_cannot_change(admin_user):
    fang = make_customer(admin_user, display_name="王芳")
    order = buy(fang, admin_user, 10, "100")
    order_totals_update()
    table = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET channel = 'tmall' WHERE id = %s", [order.pk])
        assert due() == set()
        cursor.execute(f"UPDATE {table} SET net_amount = 70 WHERE id = %s", [order.pk])
        assert due() == {fang.pk}
        order_totals_update()
        assert totals(fang) == (1, Decimal("70.00"))
        order.lines.all().delete()
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [order.pk])
    order_totals_update()
    assert totals(fang) == (0, Decimal("0"))


def test_a_merge_moves_the_totals_and_an_unmerge_moves_them_back(admin_user):
    fang = make_customer(admin_user, display_name="王芳")
    twin = make_customer(admin_user, display_name="王 芳")
    buy(fang, admin_user, 10, "100")
    buy(twin, admin_user, 5, "30")
    order_totals_update()
    record = customer_merge(survivor=fang, duplicates=[twin], actor=admin_user)
    order_totals_update()
    assert (totals(fang), totals(twin)) == ((2, Decimal("130.00")), (0, Decimal("0")))
    customer_unmerge(record=record, actor=admin_user)
    order_totals_update()
    assert (totals(fang), totals(twin)) == ((1, Decimal("100.00")), (1, Decimal("30.00")))


def test_an_order_dated_later_counts_from_its_time_on(admin_user):
    fang = make_customer(admin_user, display_name="王芳")
    now = timezone.now()
    order_create(
        customer=fang,
        data=OrderInput(ordered_at=now + timedelta(days=2), lines=[{"name": "茶", "unit_price": "60"}]),
        actor=admin_user,
    )
    order_totals_update(as_of=now)
    assert totals(fang) == (0, Decimal("0"))
    assert OrderTotalsDue.objects.get(customer_id=fang.pk).due_at == now + timedelta(days=2)
    assert order_totals_update(as_of=now + timedelta(days=1)) == 0
    assert order_totals_update(as_of=now + timedelta(days=3)) == 1
    assert totals(fang) == (1, Decimal("60.00"))


def test_a_deleted_customer_leaves_a_mark_the_refresh_passes_over(admin_user):
    gone = make_customer(admin_user, display_name="王芳")
    buy(gone, admin_user, 10, "100")
    gone_pk = gone.pk
    gone.delete()
    assert due() == {gone_pk}
    assert order_totals_update() == 1
    assert not CustomerScore.objects.filter(customer_id=gone_pk).exists() and due() == set()
