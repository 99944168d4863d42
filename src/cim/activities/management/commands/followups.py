import argparse

from django.utils import timezone

from cim.accounts.models import User
from cim.activities.follow_up_selectors import follow_ups_visible
from cim.activities.follow_ups import callback_plans_run, follow_up_reminders_send
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Follow-ups: `remind` sends the reminders that are due now; `callbacks` runs the call-back plans now; "
        "`list --user U [--overdue]` prints U's open follow-ups. The worker does the first two by itself."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        remind = actions.add_parser("remind", help="send the due reminders (in the app and by email) now")
        callbacks = actions.add_parser("callbacks", help="create the follow-ups of every active call-back plan now")
        listing = actions.add_parser("list", help="a user's open follow-ups, by due time")
        listing.add_argument("--user", required=True, help="the user's username")
        listing.add_argument("--overdue", action="store_true", help="only those past their due time")
        for sub in (remind, callbacks, listing):
            # SUPPRESS, so `--json` works before or after the action without one overriding the other.
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
            )

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _remind(self, **options):
        run = follow_up_reminders_send()
        self.report(
            f"{run.follow_ups} follow-up reminder(s) sent to {run.people} people ({run.emails} email(s)).",
            {"follow_ups": run.follow_ups, "people": run.people, "emails": run.emails},
        )

    def _callbacks(self, **options):
        runs = callback_plans_run()
        if not self.as_json:
            for run in runs:
                self.stdout.write(f"{run.name}: {run.error or f'{run.created} follow-up(s) created'}")
        created = sum(run.created for run in runs)
        failed = [run for run in runs if run.error]
        self.report(
            f"{len(runs)} call-back plan(s) run: {created} follow-up(s) created"
            + (f", {len(failed)} plan(s) could not run." if failed else "."),
            {
                "created": created,
                "plans": [
                    {"id": run.plan_id, "name": run.name, "created": run.created, "error": run.error} for run in runs
                ],
            },
        )
        if failed:
            raise self.fail(f"{len(failed)} call-back plan(s) could not run: " + "; ".join(r.name for r in failed))

    def _list(self, *, user: str, overdue: bool, **options):
        owner = User.objects.filter(username=user).first()
        if owner is None:
            raise self.fail(f"No user named “{user}”.")
        now = timezone.now()
        follow_ups = follow_ups_visible(user=owner).filter(owner=owner, status="open").order_by("due_at", "id")
        if overdue:
            follow_ups = follow_ups.filter(due_at__lt=now)
        rows = [
            {
                "id": f.pk,
                "due_at": f.due_at,
                "overdue": f.due_at < now,
                "priority": f.priority,
                "title": f.title,
                "customer": f.customer.number,
                "customer_name": f.customer.display_name,
            }
            for f in follow_ups
        ]
        if not self.as_json:
            for row in rows:
                mark = "!" if row["overdue"] else " "
                self.stdout.write(
                    f"{mark} {timezone.localtime(row['due_at']):%Y-%m-%d %H:%M}  {row['priority']:<7} "
                    f"{row['customer']}  {row['title']} ({row['customer_name']})"
                )
        late = sum(1 for row in rows if row["overdue"])
        self.report(
            f"{len(rows)} open follow-up(s) for “{user}”, {late} overdue.",
            {"user": user, "follow_ups": rows, "overdue": late},
        )
