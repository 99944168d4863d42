"""Reads of automation rules and their runs, shared by the pages, the API and the CLI."""

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from cim.automation.models import Rule, RuleRun, RuleStep
from cim.customers.models import Customer


def rule_list() -> QuerySet[Rule]:
    """Every rule, with how many of its runs are unfinished, done and failed."""
    return Rule.objects.annotate(
        runs_open=Count("runs", filter=Q(runs__status__in=(RuleRun.Status.PENDING, RuleRun.Status.WAITING))),
        runs_done=Count("runs", filter=Q(runs__status=RuleRun.Status.DONE)),
        runs_failed=Count("runs", filter=Q(runs__status=RuleRun.Status.FAILED)),
    )


def rule_get(*, pk: int) -> Rule:
    try:
        return Rule.objects.get(pk=pk)
    except Rule.DoesNotExist:
        raise Http404 from None


def rule_runs(*, user, rule: Rule, status: str | None = None) -> QuerySet[RuleRun]:
    """The rule's runs for the customers `user` may see, newest first, each with its step log."""
    runs = (
        RuleRun.objects.filter(rule=rule, customer__in=Customer.objects.visible_to(user))
        .select_related("customer")
        .prefetch_related(Prefetch("steps", queryset=RuleStep.objects.order_by("index")))
        .order_by("-created_at", "-id")
    )
    return runs.filter(status=status) if status else runs
