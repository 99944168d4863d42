"""Date conditions on the encrypted birthday (docs/encryption.md).

The database cannot compare encrypted dates, but it keeps each birthday's year and month in plaintext
(`birth_year`, `birth_month`). A range of days is answered in two parts: the months wholly inside the range by the
database, and the one or two months at its ends by decrypting the birthdays of that month's customers here (a
month holds about one in a thousand customers), whose ids then join the condition.
"""

from datetime import date

from django.db.models import Q

from cim.customers.models import Customer


def _after_month(day: date) -> Q:
    return Q(birth_year__gt=day.year) | Q(birth_year=day.year, birth_month__gt=day.month)


def _before_month(day: date) -> Q:
    return Q(birth_year__lt=day.year) | Q(birth_year=day.year, birth_month__lt=day.month)


def _same_month(day: date) -> Q:
    return Q(birth_year=day.year, birth_month=day.month)


def birthday_between_q(low: date | None, high: date | None) -> Q:
    """Customers born on or after `low` and on or before `high` (either may be open)."""
    if low is not None and high is not None and low > high:
        return Q(pk__in=[])
    whole = Q(birthday__isnull=False)
    if low is not None:
        whole &= _after_month(low)
    if high is not None:
        whole &= _before_month(high)
    edges = Q()
    for day in dict.fromkeys(d for d in (low, high) if d is not None):
        edges |= _same_month(day)
    if not edges:
        return whole
    ids = [
        pk
        for pk, birthday in Customer.objects.filter(edges).order_by().values_list("pk", "birthday")
        if birthday is not None and (low is None or birthday >= low) and (high is None or birthday <= high)
    ]
    return whole | Q(pk__in=ids)
