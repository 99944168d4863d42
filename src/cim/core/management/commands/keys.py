import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cim.core import crypto
from cim.core.commands import ReportingCommand
from cim.core.keys import PLAINTEXT, encrypted_columns, keys_rotate, keys_status, rows_to_rotate


class Command(ReportingCommand):
    help = (
        "Encryption keys of the sensitive fields: `generate` prints a new key line to put first in "
        "CIM_ENCRYPTION_KEYS (or the data dir's encryption_keys file); `status` counts rows per key id; `rotate` "
        "re-encrypts every row, history included, under the first (current) key. See docs/encryption.md."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        generate = actions.add_parser("generate", help="print a new key line (kid:base64key)")
        status = actions.add_parser("status", help="rows per key id in every encrypted column")
        rotate = actions.add_parser("rotate", help="re-encrypt every row under the current key")
        rotate.add_argument("--batch", type=int, default=2000, help="rows per transaction (default 2000)")
        for sub in (generate, status, rotate):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _generate(self, **options):
        line = crypto.key_generate()
        if self.as_json:
            self.report("", {"key": line})
        else:
            self.stdout.write(line)

    def _status(self, **options):
        ring = crypto.keyring()
        status = keys_status()
        totals: dict[str, int] = {}
        for label, counts in status.items():
            if not self.as_json:
                shown = ", ".join(f"{kid}: {n:,}" for kid, n in counts.items()) or "–"
                self.stdout.write(f"{label:>28}: {shown}")
            for kid, n in counts.items():
                totals[kid] = totals.get(kid, 0) + n
        stale = sum(n for kid, n in totals.items() if kid != ring.current)
        unknown = sorted(kid for kid in totals if kid not in ring.keys and kid != PLAINTEXT)
        summary = f"Current key {ring.current}: {totals.get(ring.current, 0):,} values; {stale:,} under other keys"
        summary += f" or in plaintext ({', '.join(sorted(k for k in totals if k != ring.current)) or 'none'})."
        if unknown:
            summary += f" No key configured for {', '.join(unknown)}!"
        self.report(
            summary,
            {"current": ring.current, "keys": list(ring.keys), "columns": status, "totals": totals, "stale": stale},
        )
        if unknown:
            raise self.fail(f"Values under keys that are not configured: {', '.join(unknown)}.")

    def _rotate(self, *, batch: int, **options):
        if batch < 1:
            raise self.fail("--batch must be at least 1.")
        ring = crypto.keyring()
        total = sum(rows_to_rotate(col) for col in encrypted_columns())
        # The bar goes to stderr so that stdout stays one summary line (or one JSON object).
        with Progress(
            TextColumn(f"rotate to {ring.current}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=options["verbosity"] == 0,
            transient=self.as_json,
        ) as progress:
            task = progress.add_task("rotate", total=total)
            try:
                written = keys_rotate(batch=batch, progress=lambda n: progress.advance(task, n))
            except crypto.DecryptionError as error:
                raise self.fail(
                    f"Rotation stopped: {error}. Rows done so far stay done; fix the keys and rerun."
                ) from None
        count = sum(written.values())
        self.report(
            f"Re-encrypted {count:,} values under key {ring.current}; `cim keys status` shows what remains.",
            {"current": ring.current, "rewritten": count, "columns": written},
        )
