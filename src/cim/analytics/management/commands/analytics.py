import argparse
from collections import Counter
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from cim.accounts.models import User
from cim.analytics.acquisition import (
    CostFileError,
    acquisition_cost_set,
    acquisition_costs_import,
    acquisition_report,
    period_parse,
)
from cim.analytics.basket import rule_list, rules_refresh
from cim.analytics.churn import churn_candidates, churn_refresh, reason_texts
from cim.analytics.clusters import cluster_list, clusters_refresh
from cim.analytics.clv import UNIT_DAYS, clv_fit
from cim.analytics.cohorts import cohort_retention
from cim.analytics.dashboard import DashboardFilter, dashboard, dashboard_filter
from cim.analytics.lifecycle import lifecycle_funnel, lifecycle_refresh
from cim.analytics.models import ReportSchedule
from cim.analytics.reports import ReportError
from cim.analytics.rfm import SEGMENT_LABELS, rfm_scores
from cim.analytics.schedules import report_schedule_download, schedule_email
from cim.analytics.sentiment import PERIODS, feedback_summary, sentiment_analyse, sentiment_refresh, topic_label
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Customer analytics: `rfm` scores and segments; `lifecycle` refreshes the stages and prints the funnel; "
        "`clv` fits BG/NBD and Gamma–Gamma and prints their parameters; `clusters` and `rules` refresh the customer "
        "clusters and the frequently-bought-together rules; `dashboard` and `cohorts` print the dashboard's figures "
        "and cohort retention; `report` builds a scheduled report now."
    )

    def add_arguments(self, parser):
        analyses = parser.add_subparsers(dest="analysis", required=True)
        rfm = analyses.add_parser("rfm", help="RFM scores (quintiles), the R×F segments and the Chinese eight")
        lifecycle = analyses.add_parser("lifecycle", help="refresh every customer's lifecycle stage now; the funnel")
        clv = analyses.add_parser("clv", help="customer lifetime value: BG/NBD + Gamma–Gamma on the orders")
        clv.add_argument(
            "--calibration-end", type=date.fromisoformat, help="last day fitted, YYYY-MM-DD (default today)"
        )
        clv.add_argument("--holdout-end", type=date.fromisoformat, help="also test the prediction up to this day")
        clv.add_argument("--time-unit", choices=sorted(UNIT_DAYS), default="W", help="D, W or M (default W)")
        for sub in (rfm, lifecycle, clv):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

        cac = analyses.add_parser("cac", help="acquisition cost (CAC), historical CLV and CLV:CAC per channel")
        cac.add_argument("--from", dest="start", default="", help="first month, YYYY-MM (default: 11 before --to)")
        cac.add_argument("--to", dest="end", default="", help="last month, YYYY-MM, included (default: this one)")
        cac.add_argument("--margin", type=float, help="gross margin 0–1 applied to CLV (default: revenue)")
        entry = cac.add_mutually_exclusive_group()
        entry.add_argument(
            "--set",
            dest="cost",
            nargs=3,
            metavar=("CHANNEL", "YYYY-MM", "AMOUNT"),
            help="first enter a channel's cost in a month",
        )
        entry.add_argument(
            "--costs", type=Path, help="first enter every cost of a CSV file: channel,month,amount[,currency][,note]"
        )
        cac.add_argument("--currency", default="CNY", help="the currency of --set (default CNY)")
        cac.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

        clusters = analyses.add_parser("clusters", help="cluster the customers who bought now (k-means); describe each")
        clusters.add_argument("--k", type=int, help="number of clusters, 2–8 (default: the best silhouette)")
        rules = analyses.add_parser("rules", help="mine the frequently-bought-together rules now; the strongest")
        rules.add_argument("--min-support", type=float, help="share of orders, 0–1 (default CIM_RULES_MIN_SUPPORT)")
        rules.add_argument("--min-confidence", type=float, help="share, 0–1 (default CIM_RULES_MIN_CONFIDENCE)")
        for sub in (clusters, rules):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

        sentiment = analyses.add_parser(
            "sentiment", help="analyse new feedback now; sentiment shares, negative topics and keywords"
        )
        sentiment.add_argument("--text", help="analyse this one text only and print the result")
        sentiment.add_argument("--period", choices=sorted(PERIODS), default="week", help="week or month (default week)")
        sentiment.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

        churn = analyses.add_parser(
            "churn", help="score every customer's churn risk and CLV now; the customers most at stake, with why"
        )
        churn.add_argument(
            "--create-tasks", action="store_true", help="also give the valuable customers at risk a follow-up"
        )
        churn.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

        dashboard = analyses.add_parser("dashboard", help="the dashboard's key figures for a period, team, channel")
        cohorts = analyses.add_parser("cohorts", help="cohort retention by month of first order")
        for sub in (dashboard, cohorts):
            sub.add_argument("--period", choices=["30d", "90d", "year", "custom"], help="default 30d")
            sub.add_argument("--from", dest="start", default="", help="first day, YYYY-MM-DD (a custom period)")
            sub.add_argument("--to", dest="end", default="", help="last day, YYYY-MM-DD, included")
            sub.add_argument("--team", type=int, help="a team's id: customers assigned to it or its members")
            sub.add_argument("--channel", help="a source channel, e.g. website")
            sub.add_argument("--segment", type=int, help="a segment's or static list's id: its members")
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
        report = analyses.add_parser("report", help="build a scheduled report now, as a file")
        report.add_argument("schedule", help="the scheduled report's name or id")
        report.add_argument("--to", dest="path", type=Path, help="write it here (default: its name, in this folder)")
        report.add_argument("--send", action="store_true", help="also e-mail it to its recipients now")
        report.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, analysis: str, **options):
        getattr(self, f"_{analysis}")(**options)

    def _rfm(self, **options):
        result = rfm_scores()
        segments = Counter(row.segment for row in result.rows)
        values = Counter(row.value_segment for row in result.rows)
        lines = [f"RFM of {len(result.rows):,} customers on {result.as_of:%Y-%m-%d}:"]
        lines += [f"  {SEGMENT_LABELS[key]}: {count:,}" for key, count in segments.most_common()]
        lines += [f"  {SEGMENT_LABELS[key]}: {count:,}" for key, count in values.most_common()]
        self.report(
            "\n".join(lines),
            {
                "as_of": result.as_of,
                "customers": len(result.rows),
                "averages": result.averages,
                "segments": dict(segments),
                "value_segments": dict(values),
                "grid": result.grid(),
            },
        )

    def _lifecycle(self, **options):
        run = lifecycle_refresh()
        funnel = lifecycle_funnel()
        lines = [f"Lifecycle of {run.customers:,} customers: {run.changed:,} changed stage."]
        lines += [
            f"  {label}: {count:,}" + (f" ({rate:.0%} of the step before)" if rate is not None else "")
            for _key, label, count, rate in funnel
        ]
        self.report(
            "\n".join(lines),
            {
                "customers": run.customers,
                "changed": run.changed,
                "stages": run.by_stage,
                "funnel": [{"stage": key, "customers": count, "conversion": rate} for key, _l, count, rate in funnel],
            },
        )

    def _clv(self, *, calibration_end, holdout_end, time_unit, **options):
        if holdout_end and calibration_end and holdout_end <= calibration_end:
            raise self.fail("--holdout-end must come after --calibration-end.")
        result = clv_fit(calibration_end=calibration_end, time_unit=time_unit, holdout_end=holdout_end)
        data = {
            "calibration_end": result.calibration_end,
            "time_unit": result.time_unit,
            "customers": result.customers,
            "bgnbd": result.bgnbd,
            "gamma_gamma": result.gamma_gamma,
            "expected_purchases_next_year": round(float(result.summary["expected"].sum()), 1),
            "mean_p_alive": round(float(result.summary["p_alive"].mean()), 4),
        }
        if result.holdout:
            data["holdout"] = {
                "end": result.holdout.end,
                "actual": result.holdout.actual,
                "predicted": round(result.holdout.predicted, 1),
            }
        params = ", ".join(f"{name}={value:.3f}" for name, value in result.bgnbd.items())
        summary = f"BG/NBD on {result.customers:,} customers to {result.calibration_end}: {params}"
        if result.holdout:
            summary += (
                f"; holdout: {result.holdout.actual:,} repeat purchases, predicted {result.holdout.predicted:,.0f}"
            )
        self.report(summary, data)

    def _cac(self, *, start, end, margin, cost, currency, costs, **options):
        actor = User.objects.filter(is_active=True, role="administrator").order_by("pk").first()
        try:
            first, last = period_parse(start, end)
            saved = 0
            if cost:
                channel, month, amount = cost
                acquisition_cost_set(channel=channel, month=month, amount=amount, currency=currency, actor=actor)
                saved = 1
            elif costs:
                saved = acquisition_costs_import(text=costs.read_text(encoding="utf-8-sig"), actor=actor)
            report = acquisition_report(start=first, end=last, margin=margin)
        except ValidationError as error:
            raise self.fail(
                "; ".join(f"{name}: {' '.join(texts)}" for name, texts in error.message_dict.items())
            ) from None
        except CostFileError as error:
            for problem in error.errors:
                self.stderr.write(f"{costs}:{problem.row}: {problem.field}: {problem.message}")
            raise self.fail(f"{len(error.errors)} errors in {costs}; no cost was saved.") from None
        except OSError as error:
            raise self.fail(f"Cannot read {costs}: {error.strerror}.") from None
        lines = [f"Saved {saved} acquisition costs."] if saved else []
        lines.append(f"Customers acquired {first:%Y-%m} to {last:%Y-%m}:")
        for row in [*report.channels, report.total]:
            cac = f"{row.cac:,.2f}" if row.cac is not None else "—"
            clv = f"{row.clv:,.2f}" if row.clv is not None else "—"
            ratio = f"{row.ratio:.1f}" if row.ratio is not None else "—"
            lines.append(f"  {row.label}: {row.customers:,} new, CAC {cac}, CLV {clv}, CLV:CAC {ratio}")
        self.report(
            "\n".join(lines),
            {
                "saved": saved,
                "from": f"{first:%Y-%m}",
                "to": f"{last:%Y-%m}",
                "margin": margin,
                "channels": [vars(row) for row in report.channels],
                "total": vars(report.total),
                "history": [vars(row) for row in report.history],
            },
        )

    def _clusters(self, *, k, **options):
        try:
            run = clusters_refresh(k=k)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        _computed, found = cluster_list()
        lines = [f"{run.customers:,} customers in {run.k} clusters:"]
        lines += [f"  {c.number}: {c.size:,} ({c.share:.0%}) {c.description}" for c in found]
        self.report(
            "\n".join(lines),
            {
                "customers": run.customers,
                "k": run.k,
                "silhouettes": run.silhouettes,
                "clusters": [
                    {"number": c.number, "size": c.size, "description": c.description, "centre": c.centre}
                    for c in found
                ],
                "population": found[0].population if found else {},
            },
        )

    def _rules(self, *, min_support, min_confidence, **options):
        try:
            run = rules_refresh(min_support=min_support, min_confidence=min_confidence)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        _total, _computed, top = rule_list(limit=10)
        lines = [
            f"{run.rules:,} rules from {run.baskets:,} orders of {run.products:,} products "
            f"(support ≥ {run.thresholds.min_support}, confidence ≥ {run.thresholds.min_confidence}, lift > 1):"
        ]
        rows = [
            {
                "if_bought": [p.name for p in rule.antecedents],
                "then": [p.name for p in rule.consequents],
                "support": rule.support,
                "confidence": rule.confidence,
                "lift": rule.lift,
            }
            for rule in top
        ]
        lines += [
            f"  {' + '.join(r['if_bought'])} → {' + '.join(r['then'])}: support {r['support']:.4f}, "
            f"confidence {r['confidence']:.2f}, lift {r['lift']:.2f}"
            for r in rows
        ]
        self.report(
            "\n".join(lines),
            {
                "baskets": run.baskets,
                "products": run.products,
                "rules": run.rules,
                "min_support": run.thresholds.min_support,
                "min_confidence": run.thresholds.min_confidence,
                "top": rows,
            },
        )

    def _sentiment(self, *, text, period, **options):
        if text is not None:
            result = sentiment_analyse(text)
            self.report(
                f"{result.label} ({result.score:+.2f}), {result.language}, topic: {topic_label(result.topic)}; "
                f"keywords: {', '.join(result.keywords) or '—'}",
                result._asdict(),
            )
            return
        run = sentiment_refresh()
        summary = feedback_summary(period=period)
        total = sum(summary.totals.values()) or 1
        lines = [f"Analysed {run.analysed:,} new or changed texts ({run.removed:,} removed)."]
        lines.append(f"Since {summary.since:%Y-%m-%d}, by {period}:")
        lines += [f"  {label}: {count:,} ({count / total:.0%})" for label, count in summary.totals.items()]
        lines += [
            f"  negative, {summary.topic_labels.get(key, key)}: {sum(counts):,}"
            for key, counts in summary.negative_by_topic.items()
        ]
        if summary.negative_keywords:
            lines.append("  negative keywords: " + ", ".join(word for word, _n in summary.negative_keywords[:10]))
        self.report(
            "\n".join(lines),
            {
                "analysed": run.analysed,
                "removed": run.removed,
                "period": period,
                "since": summary.since,
                "totals": summary.totals,
                "shares": summary.shares,
                "negative_by_topic": summary.negative_by_topic,
                "negative_keywords": summary.negative_keywords,
                "keywords": summary.keywords,
            },
        )

    def _churn(self, *, create_tasks, **options):
        run = churn_refresh(create_tasks=create_tasks)
        result, scores = run.result, run.result.scores
        method = "logistic regression on a backtest" if result.method == "model" else "fixed weights (too few to fit)"
        top = [
            {
                "customer_id": pk,
                "risk": round(float(scores.at[pk, "risk"]), 4),
                "value": round(float(scores.at[pk, "value"]), 2),
                "reasons": [key for key, _w, _p in scores.at[pk, "reasons"]],
                "texts": reason_texts(scores.at[pk, "reasons"]),
            }
            for pk in churn_candidates(scores)[:10]
        ]
        lines = [
            f"Churn risk of {run.customers:,} customers on {result.as_of} by {method}: {run.at_risk:,} at risk "
            f"(≥ {settings.CIM_CHURN_TASK_RISK:.0%}), {run.tasks:,} follow-ups made."
        ]
        lines += [f"  customer {row['customer_id']}: {row['risk']:.0%}, {'; '.join(row['texts'])}" for row in top]
        self.report(
            "\n".join(lines),
            {
                "as_of": result.as_of,
                "method": result.method,
                "customers": run.customers,
                "at_risk": run.at_risk,
                "tasks_created": run.tasks,
                "coefficients": result.coefficients,
                "backtest": result.backtest,
                "clv_problem": result.clv_problem,
                "top": top,
            },
        )

    def _dashboard_filters(self, options) -> DashboardFilter:
        values = {"period": options["period"], "from": options["start"], "to": options["end"]}
        values.update(team_id=options["team"], channel=options["channel"], segment=options["segment"])
        try:
            return dashboard_filter(values)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None

    def _dashboard(self, **options):
        board = dashboard(self._dashboard_filters(options))
        data = {**vars(board), "new_by_channel": {key: n for key, _label, n in board.new_by_channel}}
        data["trend"] = [
            {"period": day, "revenue": revenue, "orders": n, "active_customers": active}
            for day, revenue, n, active in board.trend
        ]
        percent = "—" if board.repeat_rate is None else f"{board.repeat_rate:.1%}"
        at_risk = "—" if board.at_risk_value is None else f"{board.at_risk_value:,.2f}"
        lines = [
            f"Dashboard {board.start} to {board.end}:",
            f"  customers {board.customers:,} ({board.new_customers:,} new), active {board.active_customers:,}, "
            f"orders {board.orders:,}, revenue {board.revenue:,.2f}, repeat rate {percent}",
            f"  NPS {'—' if board.nps is None else board.nps} ({board.nps_answers:,} answers), "
            f"CSAT {'—' if board.csat is None else f'{board.csat}%'} ({board.csat_answers:,} answers)",
            f"  open tickets {board.open_tickets:,} ({board.sla_breached:,} past SLA), "
            f"value at risk {at_risk} ({board.at_risk_customers:,} customers)",
        ]
        lines += [f"  new via {key}: {n:,}" for key, _label, n in board.new_by_channel]
        self.report("\n".join(lines), data)

    def _cohorts(self, **options):
        result = cohort_retention(self._dashboard_filters(options))
        lines = [f"Cohort retention to {result.end}: {len(result.cohorts)} cohorts"]
        lines += [
            f"  {cohort.month:%Y-%m} ({cohort.customers:,}): "
            + " ".join(f"{share:.0%}" for share in cohort.retention[1:])
            for cohort in result.cohorts
        ]
        self.report(
            "\n".join(lines),
            {
                "start": result.start,
                "end": result.end,
                "cohorts": [
                    {"month": c.month, "customers": c.customers, "active": c.active, "retention": c.retention}
                    for c in result.cohorts
                ],
            },
        )

    def _report(self, *, schedule, path, send, **options):
        found = ReportSchedule.objects.filter(pk=int(schedule)) if schedule.isdigit() else None
        found = found or ReportSchedule.objects.filter(name=schedule)
        if found.count() != 1:
            raise self.fail(f"No single scheduled report named or numbered {schedule!r}.")
        chosen = found.get()
        try:
            built = report_schedule_download(schedule=chosen, actor=None)
        except ReportError as error:
            raise self.fail(str(error)) from None
        path = path or Path(built.filename)
        path.write_bytes(built.content)
        if send:
            schedule_email(chosen, built)
        summary = f"Wrote {built.title} ({len(built.content):,} bytes) to {path}" + (
            f"; e-mailed to {', '.join(chosen.recipients)}." if send else "."
        )
        self.report(summary, {"schedule": chosen.pk, "file": str(path), "bytes": len(built.content), "sent": send})
