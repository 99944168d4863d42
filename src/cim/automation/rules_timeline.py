"""Rule runs on the customer timeline: which rule ran, how it ended, the steps it took."""

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cim.activities.timeline import Cursor, TimelineEntry, older_than, timeline_source
from cim.automation.models import RuleRun
from cim.automation.rules_definition import ACTIONS


@timeline_source(
    "rule", gettext_lazy("Automation rules"), rows=lambda customer_id: RuleRun.objects.filter(customer_id=customer_id)
)
def rule_run_entries(*, rows: QuerySet[RuleRun], before: Cursor | None, limit: int) -> list[TimelineEntry]:
    runs = (
        rows.filter(older_than(before, "rule", at="created_at"))
        .select_related("rule")
        .prefetch_related("steps")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        TimelineEntry(
            at=run.created_at,
            kind="rule",
            key=run.pk,
            title=_("Automation rule %(name)s") % {"name": run.rule.name},
            detail=" · ".join(
                f"{step.index + 1}. {ACTIONS.get(step.action, step.action)}: {step.get_outcome_display()}"
                for step in run.steps.all()
            )
            or run.error,
            url=reverse("automation:rule", args=[run.rule_id]),
            badges=[run.get_status_display()],
        )
        for run in runs
    ]
