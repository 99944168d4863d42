"""Which customers a date trigger selects on a day, set-based.

Birthdays are encrypted (docs/encryption.md): the database narrows to the month by the plaintext `birth_month`,
and only that month's birthdays (about one customer in twelve) are decrypted to match the day. The other kinds
are date ranges answered by the database.
"""

from datetime import date, datetime, time, timedelta

from django.db.models import Max
from django.utils import timezone

from cim.activities.models import Interaction
from cim.customers.models import Customer
from cim.segments.rules import field_catalogue


def _day_range(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def _birthdays(on: date) -> list[int]:
    # Someone born on 29 February is greeted on the 28th in other years.
    leap_day = on.month == 2 and on.day == 28 and not _is_leap(on.year)
    days = {28, 29} if leap_day else {on.day}
    rows = Customer.objects.filter(birth_month=on.month).order_by().values_list("pk", "birthday")
    return [pk for pk, birthday in rows.iterator(chunk_size=5000) if birthday is not None and birthday.day in days]


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def customers_on_date(*, kind: str, on: date, offset_days: int = 0, field: str = ""):
    """Ids of the customers a date trigger of `kind` selects on `on` (a list or a values queryset):
    `birthday`; `date_field`: `field` was `offset_days` days before `on` (negative: `field` is that many days
    after `on`, e.g. -7 is a week before a renewal date); `since_last_order` / `since_last_contact`: the last
    order or interaction was exactly `offset_days` days before `on`."""
    if kind == "birthday":
        return _birthdays(on)
    start, end = _day_range(on - timedelta(days=offset_days))
    if kind == "date_field":
        lookup = field_catalogue()[field].lookup
        return Customer.objects.filter(**{f"{lookup}__gte": start, f"{lookup}__lt": end}).values("pk")
    if kind == "since_last_order":
        return Customer.objects.filter(score__last_order_at__gte=start, score__last_order_at__lt=end).values("pk")
    if kind == "since_last_contact":
        return (
            Interaction.objects.values("customer_id")
            .annotate(last=Max("occurred_at"))
            .filter(last__gte=start, last__lt=end)
            .values("customer_id")
        )
    raise ValueError(f"unknown date kind {kind}")
