import argparse

from cim.core.commands import ReportingCommand
from cim.service.services import tickets_escalate_overdue


class Command(ReportingCommand):
    help = (
        "Tickets: `sla-check` escalates, once, every open ticket that missed its first-response or resolution "
        "deadline and emails the people handling it (what `cim worker` runs every five minutes)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("sla-check", help="escalate the tickets past a deadline now")
        # SUPPRESS, so `--json` works before or after the action without one overriding the other.
        check.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
        )

    def handle(self, *args, action: str, **options):
        run = tickets_escalate_overdue()
        self.report(
            f"{run.first_response} ticket(s) escalated for a late first response, "
            f"{run.resolution} for a late resolution.",
            {"first_response": run.first_response, "resolution": run.resolution},
        )
