import importlib.util
from pathlib import Path

from django.conf import settings
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.quality.matching import OtherComparisons
from cim.quality.services import duplicates_scan, match_model_train

ENGINES = ("duckdb", "spark")


class Command(ReportingCommand):
    help = (
        "Scan every customer for duplicates with the matching model; record the pairs for review. "
        "--train first trains the model on this installation's customers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--train", action="store_true", help="train the model on the customers first (EM)")
        parser.add_argument("--threshold", type=float, help="match probability from which a pair is recorded")
        parser.add_argument(
            "--clusters",
            type=Path,
            metavar="OUT.csv",
            help="write every customer in a duplicate cluster (cluster_id, customer_number, external_id, "
            "match_probability)",
        )
        parser.add_argument(
            "--link",
            nargs=2,
            metavar=("SYSTEM", "SYSTEM"),
            help="link the customers of two other systems (by their external ids), each list holding each person "
            "once: a customer of one is paired with at most one of the other",
        )
        parser.add_argument(
            "--engine",
            choices=ENGINES,
            help="where the model runs: duckdb (in this process) or spark (Splink on Spark); default "
            "CIM_DEDUPE_ENGINE, else duckdb",
        )
        parser.add_argument(
            "--spark-master",
            metavar="URL",
            help="the Spark master for --engine spark: a cluster (spark://host:7077) or local[N]; default "
            "CIM_SPARK_MASTER, else local[2]",
        )

    def handle(
        self,
        *args,
        train: bool,
        threshold: float | None,
        clusters: Path | None,
        engine: str | None,
        spark_master: str | None,
        link: list[str] | None,
        **options,
    ):
        if threshold is not None and not 0 < threshold < 1:
            raise self.fail("--threshold is a probability between 0 and 1.")
        if link and threshold is not None and threshold <= 0.5:
            raise self.fail("--link pairs each customer with at most one other: its --threshold is above 0.5.")
        if link and link[0] == link[1]:
            raise self.fail("--link takes two different systems.")
        engine = engine or settings.CIM_DEDUPE_ENGINE
        if engine not in ENGINES:
            raise self.fail(f"CIM_DEDUPE_ENGINE is one of {', '.join(ENGINES)}, not {engine!r}.")
        if spark_master and engine != "spark":
            raise self.fail("--spark-master is for --engine spark.")
        if engine == "spark" and importlib.util.find_spec("pyspark") is None:
            raise self.fail("The Spark engine needs pyspark: pip install 'cim[spark]' (docs/quality.md).")
        actor = User.objects.filter(is_active=True, role="administrator").order_by("pk").first()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} customers"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=options["verbosity"] == 0,
            transient=self.as_json,
        ) as progress:
            trained = None
            if train:
                task = progress.add_task("training", total=None)
                trained = match_model_train(actor=actor, progress=lambda n: progress.advance(task, n))
                if trained is None:
                    self.stderr.write("Too few customers to train on: the model CIM ships is used.")
            task = progress.add_task("scanning", total=None)
            try:
                result = duplicates_scan(
                    actor=actor,
                    threshold=threshold,
                    clusters_path=clusters,
                    progress=lambda n: progress.advance(task, n),
                    engine=engine,
                    spark_master=spark_master,
                    link=tuple(link) if link else None,
                )
            except OtherComparisons as error:
                raise self.fail(str(error)) from error
        summary = (
            f"{result.customers:,} customers scanned in {result.seconds:.1f} s: {result.pairs:,} likely duplicate "
            f"pairs in {result.clusters:,} clusters, awaiting review."
        )
        if link:
            summary = (
                f"{result.customers:,} customers of {link[0]} and {link[1]} linked in {result.seconds:.1f} s: "
                f"{result.pairs:,} pairs, each customer in at most one, awaiting review."
            )
        if result.merged:
            summary += f" {result.merged:,} pairs were merged automatically (CIM_AUTO_MERGE_THRESHOLD)."
        if clusters:
            summary += f" Clusters written to {clusters}."
        self.report(
            summary,
            {
                "customers": result.customers,
                "pairs": result.pairs,
                "clusters": result.clusters,
                "seconds": round(result.seconds, 2),
                "merged": result.merged,
                "trained": trained is not None,
                "engine": engine,
                "link": link,
            },
        )
