"""Customer lifetime value on the CDNOW sample that ships inside `lifetimes`: `python bench/clv_bench.py`.

Loads the 2,357 customers and 6,919 purchases into a fresh SQLite database (bench/data/cdnow), fits BG/NBD and
Gamma–Gamma through CIM's analytics (the orders read into DuckDB), and compares with Fader, Hardie & Lee (2005):
the parameters and the repeat purchases of the 39-week holdout. Writes its section of bench/RESULTS.md.
"""

import argparse
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from results import RESULTS, write_section  # noqa: E402
from search_bench import setup_django  # noqa: E402

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
HOLDOUT_ACTUAL = 1882


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    data_dir = BENCH / "data" / "cdnow"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    setup_django(data_dir)
    from django.core.management import call_command

    from cim.analytics.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
    from cim.analytics.clv import clv_fit

    call_command("migrate", verbosity=0)
    orders = load_cdnow()
    started = time.perf_counter()
    result = clv_fit(calibration_end=CALIBRATION_END, time_unit="W", holdout_end=HOLDOUT_END)
    seconds = time.perf_counter() - started
    rows = []
    for name, published in PUBLISHED.items():
        ours = result.bgnbd[name]
        rows.append(f"| {name} | {published} | {ours:.3f} | {100 * (ours / published - 1):+.2f}% |")
    holdout = result.holdout
    lines = [
        f"{platform.machine()}, Python {platform.python_version()}, SQLite; {datetime.now(UTC):%Y-%m-%d}; "
        f"{result.customers:,} customers, {orders:,} orders; calibration to {CALIBRATION_END}, holdout to "
        f"{HOLDOUT_END}, weeks.",
        "",
        "| BG/NBD parameter | published | CIM | difference (target ≤ 1%) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Repeat purchases in the 39-week holdout: actual {holdout.actual:,} (paper {HOLDOUT_ACTUAL:,}), "
        f"predicted {holdout.predicted:,.0f} ({100 * (holdout.predicted / holdout.actual - 1):+.1f}%, target within "
        f"15%). Gamma–Gamma: "
        + ", ".join(f"{k} = {v:.3f}" for k, v in (result.gamma_gamma or {}).items())
        + f". Fit from the database in {seconds:.1f} s.",
    ]
    print("\n".join(lines))
    write_section("Customer lifetime value on CDNOW", lines, args.results)


if __name__ == "__main__":
    main()
