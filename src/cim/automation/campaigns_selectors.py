"""Reads of campaigns for the pages, the API and the CLI: lists, one campaign, its report and a preview."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.http import Http404

from cim.automation.models import Campaign, CampaignConversion, Message
from cim.automation.models.messages import MessageStatus
from cim.customers.models import Customer
from cim.privacy.models import Consent

# Handed to the provider (whatever it said since), so counted as sent.
SENT = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.BOUNCED,
    MessageStatus.COMPLAINED,
    MessageStatus.REVIEW,
)


def campaign_list(*, status: str | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("segment", "winner")
    return campaigns.filter(status=status) if status else campaigns


def campaign_get(*, pk: int) -> Campaign:
    try:
        return Campaign.objects.select_related("segment", "winner").get(pk=pk)
    except Campaign.DoesNotExist:
        raise Http404 from None


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass
class Figures:
    """What a campaign (or one variant) did: counts of its messages, and the orders credited to it."""

    label: str = ""
    queued: int = 0
    suppressed: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    converted: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)

    @property
    def open_rate(self) -> float:
        return _rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float:
        return _rate(self.clicked, self.delivered)

    @property
    def conversion_rate(self) -> float:
        return _rate(self.converted, self.delivered)

    def add(self, other: "Figures") -> None:
        for name in self.__dataclass_fields__:
            if name != "label":
                setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Report:
    campaign: Campaign
    total: Figures
    variants: list[Figures]
    cost: Decimal
    suppressed: dict[str, int] = field(default_factory=dict)
    # Opens and clicks per hour since the start, for the chart: [[iso hour, opens, clicks], ...].
    hourly: list[list] = field(default_factory=list)

    @property
    def roi(self) -> float | None:
        """(revenue - cost) / cost; none without a cost."""
        return round(float((self.total.revenue - self.cost) / self.cost), 4) if self.cost else None


def campaign_report(*, campaign: Campaign) -> Report:
    """Sent, delivered, bounced, opened, clicked, unsubscribed, converted and revenue, per variant and in total.

    Delivered means handed over and not bounced (SMTP servers rarely confirm more). Unsubscribed counts recipients
    who withdrew consent for the campaign's purpose after it was sent to them. Revenue is the credited orders' net
    amount now, so a later refund lowers it."""
    messages = Message.objects.filter(campaign_id=campaign.pk)
    withdrawn = Consent.objects.filter(
        customer_id=OuterRef("customer_id"), purpose=campaign.purpose, granted=False, at__gte=OuterRef("sent_at")
    )
    sent = Q(status__in=SENT)
    rows = messages.values("template_id").annotate(
        queued=Count("pk", filter=Q(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])),
        suppressed=Count("pk", filter=Q(status=MessageStatus.SUPPRESSED)),
        sent=Count("pk", filter=sent),
        delivered=Count("pk", filter=sent & ~Q(status__in=[MessageStatus.BOUNCED, MessageStatus.REVIEW])),
        bounced=Count("pk", filter=Q(status=MessageStatus.BOUNCED)),
        complained=Count("pk", filter=Q(status=MessageStatus.COMPLAINED)),
        failed=Count("pk", filter=Q(status=MessageStatus.FAILED)),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("pk", filter=sent & Q(Exists(withdrawn))),
    )
    by_template = {row.pop("template_id"): Figures(**row) for row in rows}
    conversions = {
        row.pop("variant_id"): row
        for row in CampaignConversion.objects.filter(campaign=campaign)
        .values("variant_id")
        .annotate(orders=Count("pk"), converted=Count("customer_id", distinct=True), revenue=Sum("order__net_amount"))
    }
    total = Figures(label="")
    variants = []
    for variant in campaign.variants.select_related("template").prefetch_related("translations").order_by("label"):
        figures = Figures(label=variant.label)
        for template in variant.templates().values():  # its messages in every language
            figures.add(by_template.get(template.pk, Figures()))
        credited = conversions.get(variant.pk, {})
        figures.orders = credited.get("orders", 0)
        figures.converted = credited.get("converted", 0)
        figures.revenue = credited.get("revenue") or Decimal(0)
        variants.append(figures)
        total.add(figures)
    # Customers who converted through two variants cannot exist (one message per campaign), so sums hold.
    suppressed = dict(
        messages.filter(status=MessageStatus.SUPPRESSED).values_list("reason").annotate(n=Count("pk")).order_by()
    )
    return Report(
        campaign=campaign,
        total=total,
        variants=variants,
        cost=campaign.cost,
        suppressed=suppressed,
        hourly=_hourly(messages),
    )


def _hourly(messages: QuerySet) -> list[list]:
    counts: dict = {}
    for column, index in (("opened_at", 1), ("clicked_at", 2)):
        rows = (
            messages.filter(**{f"{column}__isnull": False})
            .annotate(hour=TruncHour(column))
            .values_list("hour")
            .annotate(n=Count("pk"))
            .order_by("hour")
        )
        for hour, n in rows:
            counts.setdefault(hour, [hour.isoformat(), 0, 0])[index] = n
    return [counts[hour] for hour in sorted(counts)][: 24 * 14]


def campaign_preview(*, campaign: Campaign, user, number: str) -> tuple[Customer, list[tuple[str, object]]]:
    """Each variant as customer `number` (one the user may see) would get it, in their language, with their
    recommendations."""
    from cim.automation.messaging import customer_languages, template_in, template_preview

    customer = Customer.objects.visible_to(user).filter(number=number).first()
    if customer is None:
        raise Http404
    language = customer_languages([customer.pk], campaign.purpose).get(customer.pk, "")
    variants = campaign.variants.select_related("template").prefetch_related("translations").order_by("label")
    return customer, [
        (
            variant.label,
            template_preview(template=template_in(variant.templates(), language), customer=customer),
        )
        for variant in variants
    ]
