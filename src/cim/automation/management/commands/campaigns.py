import argparse
import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cim.accounts.models import User
from cim.automation.bounces import ReportRun, maildir_process, report_process
from cim.automation.campaigns import (
    campaign_cancel,
    campaign_conversions_credit,
    campaign_create,
    campaign_pause,
    campaign_schedule,
    campaign_start,
    campaigns_advance,
)
from cim.automation.campaigns_selectors import campaign_get, campaign_list, campaign_report
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Email campaigns: `list`; `create --file SPEC.json` (name, segment, variants, test_percent, ...; see "
        "docs/campaigns.md); `report ID`; `schedule ID AT|--clear`, `start ID`, `pause ID`, `cancel ID`; `advance` "
        "(what the worker does every minute); `credit` (credit orders to campaigns now); `bounces FILE|-|--maildir "
        "DIR` (RFC 3464 bounces, RFC 5965 complaints and mailto: unsubscribe mails, e.g. piped from the MTA)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        subs = [actions.add_parser("list", help="every campaign with its status and figures")]
        create = actions.add_parser("create", help="create a draft campaign from a JSON spec")
        create.add_argument("--file", required=True, help="the spec as a JSON file, or - for standard input")
        subs.append(create)
        report = actions.add_parser("report", help="a campaign's report")
        report.add_argument("id", type=int)
        subs.append(report)
        schedule = actions.add_parser("schedule", help="send at a time (ISO 8601), or --clear to unschedule")
        schedule.add_argument("id", type=int)
        schedule.add_argument("at", nargs="?")
        schedule.add_argument("--clear", action="store_true")
        subs.append(schedule)
        for name, text in (("start", "start now (or resume)"), ("pause", "pause"), ("cancel", "cancel")):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("id", type=int)
            subs.append(sub)
        subs.append(actions.add_parser("advance", help="start due campaigns, queue messages, pick A/B winners"))
        subs.append(actions.add_parser("credit", help="credit orders placed after clicks to campaigns"))
        bounces = actions.add_parser("bounces", help="process bounces, complaints and unsubscribe mails")
        bounces.add_argument("files", nargs="*", help="report files (raw emails); - reads one from standard input")
        bounces.add_argument("--maildir", help="process and remove every new report in this Maildir")
        subs.append(bounces)
        for sub in subs:
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
            if sub.prog.split()[-1] in ("create", "schedule", "start", "pause", "cancel"):
                sub.add_argument("--user", required=True, help="username who does it")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ValidationError as error:
            raise self.fail(" ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        except Http404:
            raise self.fail(f"No campaign {options.get('id')}.") from None

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise self.fail(f"No active user {username!r}.")
        return user

    def _list(self, **options):
        rows = []
        for campaign in campaign_list():
            total = campaign_report(campaign=campaign).total
            rows.append(
                {
                    "id": campaign.pk,
                    "name": campaign.name,
                    "status": campaign.status,
                    "sent": total.sent,
                    "clicked": total.clicked,
                    "converted": total.converted,
                    "revenue": total.revenue,
                }
            )
        lines = [
            f"{r['id']:>5}  {r['name']}  [{r['status']}]  sent {r['sent']:,}, clicked {r['clicked']:,}, "
            f"converted {r['converted']:,}, revenue {r['revenue']}"
            for r in rows
        ]
        self.report("\n".join([*lines, f"{len(rows)} campaigns."]), {"campaigns": rows})

    def _create(self, *, file, user, **options):
        source = sys.stdin.read() if file == "-" else Path(file).read_text("utf-8")
        try:
            spec = json.loads(source)
        except ValueError as error:
            raise self.fail(f"--file is not JSON: {error}") from None
        if not isinstance(spec, dict):
            raise self.fail("--file must hold one JSON object.")
        spec.setdefault("name", "")
        spec.setdefault("segment", None)
        spec.setdefault("variants", None)
        campaign = campaign_create(actor=self._user(user), **spec)
        self.report(f"Campaign {campaign.pk} “{campaign.name}” created (draft).", {"id": campaign.pk})

    def _report(self, *, id, **options):
        campaign = campaign_get(pk=id)
        report = campaign_report(campaign=campaign)
        figures = lambda f: {**vars(f), "open_rate": f.open_rate, "click_rate": f.click_rate}  # noqa: E731
        t = report.total
        winner = campaign.winner.label if campaign.winner_id else ""
        lines = [
            f"{campaign.name} [{campaign.status}]",
            f"sent {t.sent:,}, delivered {t.delivered:,}, bounced {t.bounced:,}, opened {t.opened:,}, "
            f"clicked {t.clicked:,}, unsubscribed {t.unsubscribed:,}, converted {t.converted:,}, revenue "
            f"{t.revenue}, cost {report.cost}, ROI {'-' if report.roi is None else f'{report.roi:.1%}'}",
            *(
                f"  {v.label}: sent {v.sent:,}, open {v.open_rate:.1%}, click {v.click_rate:.1%}, "
                f"conversion {v.conversion_rate:.1%}{' (winner)' if campaign.winner_id and winner == v.label else ''}"
                for v in report.variants
            ),
        ]
        self.report(
            "\n".join(lines),
            {
                "id": campaign.pk,
                "status": campaign.status,
                "total": figures(t),
                "variants": [figures(v) for v in report.variants],
                "cost": report.cost,
                "roi": report.roi,
                "suppressed": report.suppressed,
            },
        )

    def _schedule(self, *, id, at, clear, user, **options):
        when = None
        if not clear:
            when = parse_datetime(at or "")
            if when is None:
                raise self.fail("Give the time as ISO 8601 (2026-12-24T10:00+08:00), or --clear.")
            if timezone.is_naive(when):
                when = timezone.make_aware(when)
        campaign = campaign_schedule(campaign=campaign_get(pk=id), at=when, actor=self._user(user))
        self.report(f"Campaign {campaign.pk}: {campaign.status}.", {"id": campaign.pk, "status": campaign.status})

    def _step(self, service, id, user):
        campaign = service(campaign=campaign_get(pk=id), actor=self._user(user))
        self.report(f"Campaign {campaign.pk}: {campaign.status}.", {"id": campaign.pk, "status": campaign.status})

    def _start(self, *, id, user, **options):
        self._step(campaign_start, id, user)

    def _pause(self, *, id, user, **options):
        self._step(campaign_pause, id, user)

    def _cancel(self, *, id, user, **options):
        self._step(campaign_cancel, id, user)

    def _advance(self, **options):
        run = campaigns_advance()
        reasons = ", ".join(f"{k} {v:,}" for k, v in run.suppressed.items())
        self.report(
            f"{run.campaigns} campaigns advanced: {run.queued:,} messages queued, "
            f"{sum(run.suppressed.values()):,} not sent ({reasons or '-'}).",
            {"campaigns": run.campaigns, "queued": run.queued, "suppressed": run.suppressed},
        )

    def _credit(self, **options):
        credited = campaign_conversions_credit()
        self.report(f"{credited:,} orders credited to campaigns.", {"credited": credited})

    def _bounces(self, *, files, maildir, **options):
        if not files and not maildir:
            raise self.fail("Give report files, - for standard input, or --maildir DIR.")
        run = maildir_process(maildir) if maildir else ReportRun()
        for name in files:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            report_process(raw, run=run)
        self.report(
            f"{run.reports:,} reports: {run.updated:,} messages updated, {run.unsubscribed:,} unsubscribed, "
            f"{run.unknown:,} not ours or not reports.",
            {"reports": run.reports, "updated": run.updated, "unsubscribed": run.unsubscribed, "unknown": run.unknown},
        )
