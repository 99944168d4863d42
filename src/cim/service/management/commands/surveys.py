import argparse
from datetime import date

from cim.core.commands import ReportingCommand
from cim.service.filters import SurveyFilter
from cim.service.models import Survey
from cim.service.selectors import EVERYONE, REPORT_BY, survey_report


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}” is not a date like 2026-01-31.") from None


def _number(value) -> str:
    return "—" if value is None else f"{value:g}"


class Command(ReportingCommand):
    help = (
        "Satisfaction surveys: `report` prints CSAT (share of 4–5 answers, average) and NPS (% promoters − % "
        "detractors) of every answer, by month, week, team or channel."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        report = actions.add_parser("report", help="CSAT and NPS by period, team or channel")
        report.add_argument("--by", choices=list(REPORT_BY), default="month")
        report.add_argument("--kind", choices=Survey.Kind.values, help="only CSAT or only NPS answers")
        report.add_argument("--since", type=_day, help="answers from this day on (YYYY-MM-DD)")
        report.add_argument("--until", type=_day, help="answers up to this day, included")
        report.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
        )

    def handle(self, *args, action: str, by: str, kind: str | None, since, until, **options):
        filters = SurveyFilter(kind=kind, since=since, until=until)
        result = survey_report(user=EVERYONE, filters=filters, by=by)
        if not self.as_json:
            self.stdout.write(f"{by:<12} {'CSAT n':>7} {'CSAT %':>7} {'avg':>5} {'NPS n':>7} {'NPS':>7}")
            for row in [*result.rows, result.total]:
                self.stdout.write(
                    f"{row.label[:12]:<12} {row.csat_answers:>7} {_number(row.csat):>7} "
                    f"{_number(row.csat_average):>5} {row.nps_answers:>7} {_number(row.nps):>7}"
                )
        total = result.total
        self.report(
            f"{total.csat_answers + total.nps_answers} answer(s): CSAT {_number(total.csat)}%, "
            f"NPS {_number(total.nps)}.",
            {"by": by, "rows": [vars(row) for row in result.rows], "total": vars(total)},
        )
