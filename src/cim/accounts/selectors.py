from django.db.models import QuerySet

from cim.accounts.models import ApiToken, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """A user's own tokens, newest first; the secret part is never stored, so never shown."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")
