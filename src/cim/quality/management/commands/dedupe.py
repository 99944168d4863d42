from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.quality.services import duplicates_scan, match_model_train


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

    def handle(self, *args, train: bool, threshold: float | None, clusters: Path | None, **options):
        if threshold is not None and not 0 < threshold < 1:
            raise self.fail("--threshold is a probability between 0 and 1.")
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
            result = duplicates_scan(
                actor=actor, threshold=threshold, clusters_path=clusters, progress=lambda n: progress.advance(task, n)
            )
        summary = (
            f"{result.customers:,} customers scanned in {result.seconds:.1f} s: {result.pairs:,} likely duplicate "
            f"pairs in {result.clusters:,} clusters, awaiting review."
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
            },
        )
