"""Follow-ups, plans and people for the follow-up tests, made through the real services."""

from datetime import datetime, timedelta

from django.utils import timezone

from cim.accounts.services import user_create
from cim.activities.follow_ups import callback_plan_create, follow_up_create
from cim.customers.saved_views import saved_view_save


def noon(days: int = 0) -> datetime:
    """Local noon, `days` from today: far from midnight, so "today" means the same to every assertion."""
    return timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=days)


def make_user(role: str, username: str, team=None, email: str = ""):
    return user_create(username=username, role=role, password="Correct-Horse-42", team=team, email=email)[0]


def make_follow_up(customer, actor, *, due_at: datetime | None = None, title: str = "回访", **fields):
    return follow_up_create(
        customer=customer, title=title, due_at=due_at or timezone.now() + timedelta(days=1), actor=actor, **fields
    )


def make_plan(admin, query: str = "value_tier=vip", *, every_days: int = 30, name: str = "VIP 回访", **fields):
    view = saved_view_save(user=admin, name=f"{name} 客户", query=query, is_shared=True)
    return callback_plan_create(
        name=name, saved_view=view, every_days=every_days, title="VIP 回访", actor=admin, **fields
    )
