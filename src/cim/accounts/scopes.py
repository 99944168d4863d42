"""Record scope: which teams a user's role lets them see customers of (roles.ROLE_SCOPE), and which departments
hold their team (shares to a department reach its sub-teams)."""

from cim.accounts.models import Team
from cim.accounts.roles import Scope, scope_of

# How deep departments nest; far more than any organisation chart CIM is meant for.
MAX_DEPTH = 10


def team_parents() -> dict[int, int | None]:
    """Every team's parent. The table is small, and the ids it gives keep a query short: the tree as inline joins
    took PostgreSQL longer to plan than the query took to run."""
    return dict(Team.objects.order_by().values_list("pk", "parent_id"))


def team_ancestors(team_ids, parents: dict[int, int | None]) -> set[int]:
    """These teams and the departments above them (whose department holds them), up to MAX_DEPTH levels up."""
    found = set()
    for team in team_ids:
        for _level in range(MAX_DEPTH + 1):
            if team is None:
                break
            found.add(team)
            team = parents.get(team)
    return found


def team_descendants(team_ids, parents: dict[int, int | None]) -> set[int]:
    """These teams and the teams under them, up to MAX_DEPTH levels down."""
    children: dict[int | None, list[int]] = {}
    for team, parent in parents.items():
        children.setdefault(parent, []).append(team)
    found = level = set(team_ids)
    for _level in range(MAX_DEPTH):
        level = {child for team in level for child in children.get(team, ())}
        found = found | level
    return found


def user_team_parents(user) -> dict[int, int | None]:
    """`team_parents()`, read once per user object (a request's user lives for the request)."""
    parents = user.__dict__.get("_cim_team_parents")
    if parents is None:
        parents = user.__dict__["_cim_team_parents"] = team_parents()
    return parents


def scope_team_ids(user) -> list[int] | None:
    """The teams whose customers `user` sees by scope: their team (TEAM), their team and the teams under it
    (DEPARTMENT); None for ALL and for OWN or a user without a team."""
    scope = scope_of(user)
    if scope == Scope.TEAM and user.team_id:
        return [user.team_id]
    if scope != Scope.DEPARTMENT or not user.team_id:
        return None
    return sorted(team_descendants([user.team_id], user_team_parents(user)))


def department_ids(user) -> list[int]:
    """The user's team and the departments above it, up to MAX_DEPTH levels up (none without a team)."""
    parents = user_team_parents(user) if user.team_id else {}
    found, team = [], user.team_id
    while team is not None and len(found) <= MAX_DEPTH:
        found.append(team)
        team = parents.get(team)
    return found
