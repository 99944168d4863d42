"""Record scope in SQL: which teams a user's role lets them see customers of (roles.ROLE_SCOPE)."""

from django.db.models import Q, QuerySet

from cim.accounts.models import Team
from cim.accounts.roles import Scope, scope_of

# How deep departments nest. The subtree is an inline subquery (a join per level), so a list page pays no extra
# query for it; ten levels are far more than any organisation chart CIM is meant for.
MAX_DEPTH = 10


def subtree_q(team_id: int, prefix: str = "") -> Q:
    """Teams that are `team_id` or under it, up to MAX_DEPTH levels down."""
    q = Q(**{f"{prefix}pk": team_id})
    path = "parent"
    for _level in range(MAX_DEPTH):
        q |= Q(**{f"{prefix}{path}_id": team_id})
        path += "__parent"
    return q


def scope_teams(user) -> QuerySet[Team] | None:
    """The teams whose customers `user` sees by scope: their team (TEAM), their team and the teams under it
    (DEPARTMENT); None for ALL and for OWN or a user without a team."""
    scope = scope_of(user)
    if scope == Scope.TEAM and user.team_id:
        return Team.objects.filter(pk=user.team_id)
    if scope == Scope.DEPARTMENT and user.team_id:
        return Team.objects.filter(subtree_q(user.team_id))
    return None


def ancestors_q(team_ids) -> Q:
    """Teams that are one of `team_ids` or above one of them (whose department holds them)."""
    ids = list(team_ids)
    q = Q(pk__in=ids)
    path = "children"
    for _level in range(MAX_DEPTH):
        q |= Q(**{f"{path}__in": ids})
        path += "__children"
    return q
