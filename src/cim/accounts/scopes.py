"""Record scope: which teams a user's role lets them see customers of (roles.ROLE_SCOPE), and which departments
hold their team (shares to a department reach its sub-teams)."""

from django.db.models import Q

from cim.accounts.models import Team
from cim.accounts.roles import Scope, scope_of

# How deep departments nest; far more than any organisation chart CIM is meant for.
MAX_DEPTH = 10


def ancestors_q(team_ids) -> Q:
    """Teams that are one of `team_ids` or above one of them (whose department holds them), as a condition."""
    ids = list(team_ids)
    q = Q(pk__in=ids)
    path = "children"
    for _level in range(MAX_DEPTH):
        q |= Q(**{f"{path}__in": ids})
        path += "__children"
    return q


def _team_parents(user) -> dict[int, int | None]:
    """Every team's parent, read once per user object (a request's user lives for the request). The table is small,
    and the ids it gives keep each scoped query short: the tree as inline joins took PostgreSQL longer to plan than
    the query took to run, on every list and customer page."""
    parents = user.__dict__.get("_cim_team_parents")
    if parents is None:
        parents = user.__dict__["_cim_team_parents"] = dict(Team.objects.order_by().values_list("pk", "parent_id"))
    return parents


def scope_team_ids(user) -> list[int] | None:
    """The teams whose customers `user` sees by scope: their team (TEAM), their team and the teams under it
    (DEPARTMENT); None for ALL and for OWN or a user without a team."""
    scope = scope_of(user)
    if scope == Scope.TEAM and user.team_id:
        return [user.team_id]
    if scope != Scope.DEPARTMENT or not user.team_id:
        return None
    children: dict[int, list[int]] = {}
    for team, parent in _team_parents(user).items():
        children.setdefault(parent, []).append(team)
    found, level = [user.team_id], [user.team_id]
    for _depth in range(MAX_DEPTH):
        level = [child for team in level for child in children.get(team, ())]
        found += level
    return found


def department_ids(user) -> list[int]:
    """The user's team and the departments above it, up to MAX_DEPTH levels up (none without a team)."""
    parents = _team_parents(user) if user.team_id else {}
    found, team = [], user.team_id
    while team is not None and len(found) <= MAX_DEPTH:
        found.append(team)
        team = parents.get(team)
    return found
