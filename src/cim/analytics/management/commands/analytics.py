import argparse
from collections import Counter
from datetime import date

from cim.analytics.clv import UNIT_DAYS, clv_fit
from cim.analytics.lifecycle import lifecycle_funnel, lifecycle_refresh
from cim.analytics.rfm import SEGMENT_LABELS, rfm_scores
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Customer analytics: `rfm` scores and segments; `lifecycle` refreshes the stages and prints the funnel; "
        "`clv` fits BG/NBD and Gamma–Gamma and prints their parameters."
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
