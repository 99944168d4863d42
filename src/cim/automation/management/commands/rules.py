import argparse

from django.core.exceptions import ValidationError
from django.http import Http404

from cim.accounts.models import User
from cim.automation.models import Rule
from cim.automation.rules import rule_dry_run, rule_runs_execute, rules_dates_run
from cim.automation.rules_selectors import rule_get, rule_list, rule_runs
from cim.automation.rules_services import rule_activate
from cim.core.commands import ReportingCommand
from cim.segments.selectors import segment_get


class Command(ReportingCommand):
    help = (
        "Automation rules: `list`; `show ID` (definition and latest runs); `dry-run ID --segment S --user U` (who in "
        "the segment the rule would reach and their steps; nothing is written); `activate ID --user U [--off]`; "
        "`run` carries due runs forward and starts today's date rules now, as the worker does."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="every rule with its runs")
        show = actions.add_parser("show", help="a rule and its latest runs")
        show.add_argument("id", type=int)
        show.add_argument("--user", required=True, help="username whose customers' runs are shown")
        dry = actions.add_parser("dry-run", help="who in a segment the rule would reach")
        dry.add_argument("id", type=int)
        dry.add_argument("--segment", type=int, required=True, help="segment id")
        dry.add_argument("--limit", type=int, default=20, help="customers shown with their steps")
        dry.add_argument("--user", required=True, help="username whose customers are shown")
        activate = actions.add_parser("activate", help="switch a rule on (or off with --off)")
        activate.add_argument("id", type=int)
        activate.add_argument("--off", action="store_true", help="switch it off")
        activate.add_argument("--user", required=True, help="username who switches it")
        run = actions.add_parser("run", help="execute due runs and today's date rules now")
        for sub in (listing, show, dry, activate, run):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**options)
        except ValidationError as error:
            raise self.fail(" ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        except Http404:
            raise self.fail("Not found.") from None

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise self.fail(f"No active user {username!r}.")
        return user

    @staticmethod
    def _row(rule: Rule) -> dict:
        return {"id": rule.pk, "name": rule.name, "active": rule.is_active, "trigger": rule.trigger}

    def _list(self, **options):
        rows = []
        lines = []
        for rule in rule_list():
            row = {**self._row(rule), "open": rule.runs_open, "done": rule.runs_done, "failed": rule.runs_failed}
            rows.append(row)
            state = "on " if rule.is_active else "off"
            lines.append(
                f"{rule.pk:>5}  [{state}] {rule.name}  ({rule.trigger.get('event')}): "
                f"{rule.runs_open:,} open, {rule.runs_done:,} done, {rule.runs_failed:,} failed"
            )
        self.report("\n".join([*lines, f"{len(rows)} rules."]), {"rules": rows})

    def _show(self, *, id, user, **options):
        rule = rule_get(pk=id)
        runs = list(rule_runs(user=self._user(user), rule=rule)[:20])
        data = {
            **self._row(rule),
            "conditions": rule.conditions,
            "steps": rule.steps,
            "runs": [
                {
                    "customer": run.customer.number,
                    "status": run.status,
                    "steps": [[s.index, s.action, s.outcome, s.detail, s.error] for s in run.steps.all()],
                }
                for run in runs
            ],
        }
        lines = [f"{rule.name} ({'on' if rule.is_active else 'off'}): {rule.trigger}"]
        for run in data["runs"]:
            steps = "; ".join(f"{i + 1} {a} {o}" for i, a, o, _d, _e in run["steps"])
            lines.append(f"  {run['customer']}  {run['status']}  {steps}")
        self.report("\n".join([*lines, f"{len(runs)} latest runs shown."]), data)

    def _dry_run(self, *, id, segment, limit, user, **options):
        rule = rule_get(pk=id)
        result = rule_dry_run(rule=rule, segment=segment_get(pk=segment), user=self._user(user), limit=limit)
        customers = [
            {"customer": c.number, "steps": [[s.label, s.action, s.outcome, s.detail] for s in steps]}
            for c, steps in result.shown
        ]
        lines = [
            f"  {row['customer']}: " + "; ".join(f"{label} {a} {o} {d}".strip() for label, a, o, d in row["steps"])
            for row in customers
        ]
        self.report(
            "\n".join([*lines, f"{result.affected:,} customers would be reached; nothing was changed."]),
            {"affected": result.affected, "customers": customers},
        )

    def _activate(self, *, id, off, user, **options):
        rule = rule_activate(rule=rule_get(pk=id), actor=self._user(user), active=not off)
        self.report(f"{rule.name} is {'on' if rule.is_active else 'off'}.", self._row(rule))

    def _run(self, **options):
        started = rules_dates_run()
        taken = rule_runs_execute()
        self.report(
            f"{started:,} date runs started, {taken:,} runs carried forward.", {"started": started, "runs": taken}
        )
