"""A demo history for the demo customers: a product catalogue, orders with refunds and cancellations,
interactions, follow-ups and tickets, so that `make run` shows customer pages, timelines and reports with data.
Written through the services, so every total and audit entry is what real use would produce."""

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from cim.accounts.models import User
from cim.activities.history_schemas import InteractionInput, OrderInput, ProductInput, RefundInput
from cim.activities.interactions import interaction_log
from cim.activities.models import FollowUp
from cim.activities.orders import order_cancel, order_create, order_refund, product_save
from cim.customers.models import Customer
from cim.service.services import ticket_create

PRODUCTS = [
    ("TEA-LJ-250", "西湖龙井 250g", "茶叶", "268.00"),
    ("TEA-PE-357", "普洱茶饼 357g", "茶叶", "198.00"),
    ("TEA-TG-500", "安溪铁观音 500g", "茶叶", "320.00"),
    ("CUP-CZ-01", "景德镇青花瓷茶杯", "茶具", "88.00"),
    ("POT-ZS-01", "宜兴紫砂壶", "茶具", "680.00"),
    ("SET-GF-06", "功夫茶具六件套", "茶具", "399.00"),
    ("GIFT-ZQ-01", "中秋茶礼盒", "礼盒", "588.00"),
    ("GIFT-CJ-01", "新春茶礼盒", "礼盒", "688.00"),
    ("SNK-YB-01", "云南鲜花饼", "茶点", "45.00"),
    ("MEM-VIP-1Y", "年度会员", "会员", "299.00"),
]
CHANNELS = ["天猫旗舰店", "京东自营", "微信小程序", "线下门店", "抖音小店"]
STORES = ["杭州湖滨店", "上海南京西路店", "北京国贸店", "深圳万象城店", ""]
NOTES = [
    ("call", "outbound", "reached", "回访新品试用感受", "客户反馈龙井口感很好，考虑中秋团购。"),
    ("wechat", "inbound", "interested", "咨询礼盒定制", "想为公司定制 50 份新春礼盒，需要报价。"),
    ("visit", "outbound", "interested", "上门拜访", "参观了门店，留下了样品。"),
    ("call", "outbound", "no_answer", "季度回访", ""),
    ("email", "outbound", "", "发送电子目录", "已发送 2026 春季产品目录。"),
    ("note", "", "", "客户偏好", "只喝绿茶，不喜欢烟熏味。"),
]


def demo_history_load(*, actor: User, seed: int = 0, share: float = 0.5) -> int:
    """Give about `share` of the customers a history; returns how many orders were made."""
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        for sku, name, category, price in PRODUCTS:
            product_save(data=ProductInput(sku=sku, name=name, category=category, price=price), actor=actor)
        customers = list(Customer.objects.filter(status="active").select_related("owner").order_by("pk"))
        chosen = rng.sample(customers, int(len(customers) * share))
        staff = list(User.objects.filter(is_active=True, role__in=["sales", "manager", "service"]))
        orders = 0
        for index, customer in enumerate(chosen):
            for _ in range(rng.choice((1, 1, 2, 3, 5))):
                lines = [
                    {"sku": sku, "quantity": rng.choice((1, 1, 2, 3))}
                    for sku, *_rest in rng.sample(PRODUCTS, rng.choice((1, 1, 2, 3)))
                ]
                placed = order_create(
                    customer=customer,
                    data=OrderInput(
                        ordered_at=now - timedelta(days=rng.randrange(720), minutes=rng.randrange(1440)),
                        channel=rng.choice(CHANNELS),
                        store=rng.choice(STORES),
                        lines=lines,
                    ),
                    actor=actor,
                )
                orders += 1
                luck = rng.random()
                if luck < 0.05:
                    order_cancel(order=placed, reason="客户取消", actor=actor)
                elif luck < 0.12:
                    amount = (placed.total_amount * Decimal("0.3")).quantize(Decimal("0.01"))
                    order_refund(order=placed, data=RefundInput(amount=amount, reason="部分商品破损"), actor=actor)
                elif luck < 0.15:
                    order_refund(order=placed, data=RefundInput(reason="七天无理由退货"), actor=actor)
            author = customer.owner or rng.choice(staff)
            for kind, direction, outcome, subject, body in rng.sample(NOTES, rng.choice((0, 1, 2))):
                interaction_log(
                    customer=customer,
                    data=InteractionInput(
                        kind=kind,
                        direction=direction,
                        outcome=outcome,
                        subject=subject,
                        body=body,
                        occurred_at=now - timedelta(days=rng.randrange(180), minutes=rng.randrange(600)),
                    ),
                    actor=author,
                )
            if index % 10 == 0 and customer.owner:
                FollowUp.objects.create(
                    customer=customer,
                    title="回访：中秋礼盒意向",
                    owner=customer.owner,
                    due_at=now + timedelta(days=rng.randrange(-5, 10)),
                    created_by=actor,
                )
            if index % 15 == 0:
                ticket_create(
                    customer=customer,
                    subject=rng.choice(["收到的茶杯有裂纹", "物流太慢", "发票开错了", "礼盒少了一罐茶"]),
                    channel=rng.choice(["phone", "wechat", "email"]),
                    category=rng.choice(["product", "delivery", "billing", "complaint"]),
                    priority=rng.choice(["normal", "normal", "high", "urgent"]),
                    actor=actor,
                )
    return orders
