from django.utils.functional import SimpleLazyObject

from cim.activities.follow_up_selectors import navbar_counts


def follow_ups(request) -> dict:
    """`follow_up_counts` (open, overdue, unread) for the navigation bar. Lazy: counted only when a page shows
    them, so partial (htmx) responses and anonymous pages cost nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"follow_up_counts": SimpleLazyObject(lambda: navbar_counts(user=user))}
