"""Why the model thinks two records are one customer, in words people read."""

from django.utils.translation import gettext as _

from cim.quality.matching import COMPARISONS


def comparison_labels() -> dict[str, str]:
    return {
        "name": _("Name"),
        "birthday": _("Birthday"),
        "phones": _("Phone"),
        "emails": _("Email"),
        "address": _("Address"),
        "company": _("Company"),
        "gender": _("Gender"),
    }


def comparison_reasons(contributions: dict[str, float]) -> list[tuple[str, float]]:
    """Each compared field's part in the match (+ for, − against), strongest first; fields with nothing to
    compare (weight 0) are left out."""
    labels = comparison_labels()
    return sorted(
        ((labels[name], weight) for name, weight in contributions.items() if name in COMPARISONS and weight),
        key=lambda item: -abs(item[1]),
    )
