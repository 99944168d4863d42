from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cim.core.commands import ReportingCommand
from cim.customers.demo import demo_load


class Command(ReportingCommand):
    help = "Load realistic demo customers (Chinese and English names, organizations, phones, emails, tags)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1000, help="how many customers to add (default 1000)")
        parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data")

    def handle(self, *args, customers: int, seed: int, **options):
        if customers < 1:
            raise self.fail("--customers must be at least 1.")
        # The bar goes to stderr so that stdout stays one summary line (or one JSON object).
        with Progress(
            TextColumn("demo"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=options["verbosity"] == 0,
            transient=self.as_json,
        ) as progress:
            task = progress.add_task("demo", total=customers)
            result = demo_load(customers=customers, seed=seed, progress=lambda n: progress.advance(task, n))
        self.report(
            f"Loaded {result.customers:,} demo customers in {result.seconds:.1f} s.",
            {"customers": result.customers, "seconds": round(result.seconds, 2)},
        )
