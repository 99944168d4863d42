import csv
from dataclasses import asdict
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from cim.accounts.models import User
from cim.activities.performance import performance_report, performance_table
from cim.audit.services import audit_record
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = "Staff performance per person and team over a period (default: the last 30 days), as a table or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="whose view: the staff they may see (default: the first administrator)")
        parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", type=date.fromisoformat, help="last day, YYYY-MM-DD (included)")
        parser.add_argument("--csv", action="store_true", dest="as_csv", help="print the report as CSV")

    def handle(self, *args, user: str | None, since: date | None, until: date | None, as_csv: bool, **options):
        viewer = (
            User.objects.filter(username=user, is_active=True).first()
            if user
            else User.objects.filter(role="administrator", is_active=True).order_by("pk").first()
        )
        if viewer is None:
            raise self.fail(f"No active user {user!r}." if user else "No administrator yet: run `cim bootstrap`.")
        try:
            report = performance_report(
                user=viewer,
                since=_start(since),
                until=_start(until + timedelta(days=1)) if until else None,
            )
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        header, rows = performance_table(report)
        if as_csv:
            note = f"csv {report.since:%Y-%m-%d}..{report.until:%Y-%m-%d}"
            audit_record(actor=viewer, action="performance.export", target=None, target_type="report", note=note)
            _write_csv(self.stdout, header, rows)
            return
        data = {
            "since": report.since,
            "until": report.until,
            "staff": [{"username": r.user.username, **asdict(r.figures)} for r in report.staff],
            "teams": [{"team": t.name, "members": t.members, **asdict(t.figures)} for t in report.teams],
        }
        lines = [" | ".join(header), *(" | ".join("" if v is None else str(v) for v in row) for row in rows)]
        self.report("\n".join(lines), data)


def _start(day: date | None) -> datetime | None:
    return timezone.make_aware(datetime.combine(day, time())) if day else None


def _write_csv(stream, header: list[str], rows: list[list]) -> None:
    writer = csv.writer(stream)
    writer.writerow(header)
    writer.writerows(rows)
