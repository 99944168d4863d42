import argparse
from datetime import date

from cim.accounts.models import User
from cim.automation.calendar import DateKind, business_today
from cim.automation.care import care_run, care_templates_create
from cim.automation.care_selectors import CALENDAR_KINDS, care_calendar, care_plan_list
from cim.automation.models import Gift
from cim.automation.models.messages import Channel
from cim.core.commands import ReportingCommand


def _month(text: str) -> date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}” is not a month as YYYY-MM") from None


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}” is not a day as YYYY-MM-DD") from None


class Command(ReportingCommand):
    help = (
        "Customer care: `calendar` prints a month (festivals, statutory holidays, make-up workdays, birthdays, lunar "
        "birthdays, anniversaries); `run` runs the care plans now (the worker does it every hour; nothing happens "
        "twice); `gifts` lists recorded gifts; `templates` adds the standard greeting templates."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        calendar = actions.add_parser("calendar", help="a month of the care calendar")
        calendar.add_argument("--month", type=_month, help="YYYY-MM (this month by default)")
        calendar.add_argument("--user", help="count only the customers this user sees (default: every customer)")
        calendar.add_argument("--owner", help="only the customers this user owns")
        run = actions.add_parser("run", help="run the active care plans now")
        run.add_argument("--day", type=_day, help="the day to run for, YYYY-MM-DD (today by default)")
        run.add_argument("--plan", type=int, action="append", help="only this plan id (repeatable)")
        gifts = actions.add_parser("gifts", help="recorded gifts, newest first")
        gifts.add_argument("--customer", help="only this customer's (number)")
        gifts.add_argument("--since", type=_day, help="given on or after YYYY-MM-DD")
        gifts.add_argument("--limit", type=int, default=100)
        templates = actions.add_parser("templates", help="add the standard greeting templates (zh-Hans and en)")
        templates.add_argument("--channel", choices=Channel.values, default=Channel.EMAIL)
        for sub in (calendar, run, gifts, templates):
            # SUPPRESS, so `--json` works before or after the action without one overriding the other.
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
            )

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _user(self, username: str | None) -> User | None:
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise self.fail(f"No user named “{username}”.")
        return user

    def _calendar(self, *, month: date | None, user: str | None, owner: str | None, **options):
        first = month or business_today().replace(day=1)
        viewer, owner_user = self._user(user), self._user(owner)
        if viewer is None:
            # The operator's view: every customer (of the owner, if given).
            viewer = User.objects.filter(role="administrator", is_active=True).order_by("pk").first()
            if viewer is None:
                raise self.fail("No active administrator to count customers as; name one with --user.")
        found = care_calendar(
            user=viewer, year=first.year, month=first.month, owner_id=owner_user.pk if owner_user else None
        )
        rows = []
        for entry in found.days:
            row = {
                "day": entry.day,
                "workday": entry.workday,
                "festivals": [f.festival.value for f in entry.festivals],
                "statutory": [{"kind": s.kind.value, "name": s.name} for s in entry.statutory],
                "customers": {c.kind.value: c.count for c in entry.customers},
            }
            rows.append(row)
            if not self.as_json:
                marks = [f.label for f in entry.festivals]
                marks += [f"{s.name} ({s.kind.label})" for s in entry.statutory]
                marks += [f"{DateKind(k).label}: {n}" for k, n in row["customers"].items()]
                workday = " " if entry.workday else "*"
                self.stdout.write(f"{entry.day:%Y-%m-%d} {entry.day:%a}{workday} {' · '.join(marks)}")
        totals = {kind.value: sum(r["customers"].get(kind.value, 0) for r in rows) for kind in CALENDAR_KINDS}
        self.report(
            f"{first:%Y-%m}: {sum(len(r['festivals']) for r in rows)} festival(s), "
            f"{sum(1 for r in rows if not r['workday'])} day(s) off, {totals['birthday']} birthday(s), "
            f"{totals['lunar_birthday']} lunar birthday(s), {totals['anniversary']} anniversary(ies).",
            {"month": f"{first:%Y-%m}", "days": rows, "totals": totals},
        )

    def _run(self, *, day: date | None, plan: list[int] | None, **options):
        plans = None
        if plan:
            plans = list(care_plan_list().filter(pk__in=plan))
            missing = set(plan) - {p.pk for p in plans}
            if missing:
                raise self.fail(f"No care plan with id {', '.join(map(str, sorted(missing)))}.")
        runs = care_run(day=day, plans=plans, force=True)
        if not self.as_json:
            for run in runs:
                what = run.error or (
                    f"{run.customers} customer(s), {run.queued} greeting(s) queued, "
                    f"{sum(run.suppressed.values())} not sent, {run.tasks} call task(s)"
                )
                self.stdout.write(f"{run.plan.name} ({run.occasion_day}): {what}")
        failed = [run for run in runs if run.error]
        self.report(
            f"{len(runs)} care plan(s) run: {sum(r.queued for r in runs)} greeting(s) queued, "
            f"{sum(r.tasks for r in runs)} call task(s) created"
            + (f", {len(failed)} plan(s) could not run." if failed else "."),
            {
                "plans": [
                    {
                        "id": r.plan.pk,
                        "name": r.plan.name,
                        "day": r.day,
                        "occasion_day": r.occasion_day,
                        "customers": r.customers,
                        "queued": r.queued,
                        "suppressed": r.suppressed,
                        "tasks": r.tasks,
                        "error": r.error,
                    }
                    for r in runs
                ]
            },
        )
        if failed:
            raise self.fail(f"{len(failed)} care plan(s) could not run: " + "; ".join(r.plan.name for r in failed))

    def _gifts(self, *, customer: str | None, since: date | None, limit: int, **options):
        gifts = Gift.objects.select_related("customer", "given_by").order_by("-given_on", "-id")
        if customer:
            gifts = gifts.filter(customer__number=customer)
        if since:
            gifts = gifts.filter(given_on__gte=since)
        rows = [
            {
                "id": g.pk,
                "customer": g.customer.number,
                "description": g.description,
                "value": g.value,
                "currency": g.currency,
                "occasion": g.occasion,
                "given_on": g.given_on,
                "given_by": g.given_by.username if g.given_by_id else None,
            }
            for g in gifts[: max(limit, 1)]
        ]
        if not self.as_json:
            for row in rows:
                value = f" {row['value']} {row['currency']}" if row["value"] is not None else ""
                self.stdout.write(
                    f"{row['given_on']}  {row['customer']}  {row['description']}{value} ({row['occasion']})"
                )
        self.report(f"{len(rows)} gift(s).", {"gifts": rows})

    def _templates(self, *, channel: str, **options):
        made = care_templates_create(channel=channel, actor=None)
        self.report(
            f"{len(made)} greeting template(s) added for {channel}.",
            {"created": [{"id": t.pk, "name": t.name, "language": t.language} for t in made]},
        )
