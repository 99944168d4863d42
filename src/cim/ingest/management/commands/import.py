import argparse
import json
from dataclasses import asdict
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.customers.choices import SourceChannel
from cim.ingest.models import ImportJob, ImportMapping
from cim.ingest.readers import TEXT_ENCODINGS, encoding_label
from cim.ingest.services import (
    file_sha256,
    import_errors_read,
    import_job_create,
    import_job_unfinished,
    import_run,
)
from cim.ingest.tasks import import_job_run


class Command(ReportingCommand):
    help = (
        "Import customers, orders or interactions from CSV, Excel (.xlsx, .xls), vCard, JSON or JSON Lines; "
        "resume an import; list its row errors."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        customers = sub.add_parser("customers", help="import a file of customers")
        customers.add_argument("file", type=Path)
        customers.add_argument("--mapping", help="a JSON file {column: field}, or the name of a saved mapping")
        customers.add_argument("--dry-run", action="store_true", help="count what would happen; write nothing")
        customers.add_argument("--source", default="", help="the system the file comes from; external ids are its ids")
        customers.add_argument(
            "--channel", default="", choices=["", *SourceChannel.values], help="source channel for rows without one"
        )
        customers.add_argument(
            "--update-existing", action="store_true", help="update customers whose phone or email matches"
        )
        customers.add_argument("--background", action="store_true", help="queue it for `cim worker` and return")
        customers.add_argument(
            "--user", help="who imports (their scope, default owner); default: the first administrator"
        )
        orders = sub.add_parser("orders", help="import a file of orders (a row per order line or per order)")
        orders.add_argument("file", type=Path)
        orders.add_argument("--mapping", help="a JSON file {column: field}, or the name of a saved mapping")
        orders.add_argument("--dry-run", action="store_true", help="count what would happen; write nothing")
        orders.add_argument(
            "--source", default="", help="the system the file comes from: order numbers and external ids are its"
        )
        orders.add_argument("--background", action="store_true", help="queue it for `cim worker` and return")
        orders.add_argument("--user", help="who imports; default: the first administrator")
        interactions = sub.add_parser(
            "interactions", help="import a file of interactions: call logs, visits, follow-up records"
        )
        interactions.add_argument("file", type=Path)
        interactions.add_argument("--mapping", help="a JSON file {column: field}, or the name of a saved mapping")
        interactions.add_argument("--dry-run", action="store_true", help="count what would happen; write nothing")
        interactions.add_argument("--source", default="", help="the system the file comes from: external ids are its")
        interactions.add_argument("--background", action="store_true", help="queue it for `cim worker` and return")
        interactions.add_argument("--user", help="who imports; default: the first administrator")
        resume = sub.add_parser("resume", help="continue an import that stopped, from its last committed batch")
        resume.add_argument("job", type=int)
        errors = sub.add_parser("errors", help="print an import's row errors as CSV (row, column, reason)")
        errors.add_argument("job", type=int)
        errors.add_argument("--dry-run", action="store_true", help="the dry run's errors")
        for subparser in (customers, orders, interactions):
            subparser.add_argument(
                "--sheet", default="", help="the workbook's sheet to read; default: the first whose columns map"
            )
            subparser.add_argument(
                "--encoding",
                default="",
                choices=list(TEXT_ENCODINGS),
                help="a text file's encoding, when the one found is wrong",
            )
        for subparser in (customers, orders, interactions, resume):
            # Also after the subcommand; SUPPRESS keeps an unset flag from hiding `cim import --json customers`.
            subparser.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
            )

    def handle(self, *args, action: str, **options):
        return getattr(self, f"_{action}")(**options)

    def _actor(self, username: str | None) -> User:
        users = User.objects.filter(is_active=True)
        user = (
            users.filter(username=username).first()
            if username
            else users.filter(role="administrator").order_by("pk").first()
        )
        if user is None:
            raise self.fail(
                f"No active user {username!r}." if username else "No administrator yet: run `cim bootstrap`."
            )
        return user

    def _mapping(self, value: str | None) -> dict | None:
        if not value:
            return None
        saved = ImportMapping.objects.filter(name=value).first()
        if saved:
            return saved.mapping
        try:
            mapping = json.loads(Path(value).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise self.fail(f"--mapping {value}: not a saved mapping nor a readable JSON file ({error}).") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise self.fail("--mapping must be a JSON object of column name → field name.")
        return mapping

    def _orders(self, **options):
        return self._customers(kind="orders", channel="", update_existing=False, **options)

    def _interactions(self, **options):
        return self._customers(kind="interactions", channel="", update_existing=False, **options)

    def _customers(self, *, file: Path, dry_run: bool, background: bool, kind: str = "customers", **options):
        if not file.is_file():
            raise self.fail(f"{file}: no such file.")
        actor = self._actor(options["user"])
        mapping = self._mapping(options["mapping"])
        unfinished = None if dry_run else import_job_unfinished(sha256=file_sha256(file), actor=actor)
        if (
            unfinished
            and mapping in (None, unfinished.mapping)
            and options["sheet"] in ("", unfinished.sheet)
            and options["encoding"] in ("", unfinished.encoding)
        ):
            self.stderr.write(f"Resuming import {unfinished.pk} of this file after row {unfinished.rows_done:,}.")
            job = unfinished
        else:
            try:
                job = import_job_create(
                    path=file,
                    filename=file.name,
                    actor=actor,
                    mapping=mapping,
                    source=options["source"],
                    source_channel=options["channel"],
                    update_existing=options["update_existing"],
                    kind=kind,
                    sheet=options["sheet"],
                    encoding=options["encoding"],
                )
            except ValidationError as error:
                raise self.fail(" ".join(m for messages in error.message_dict.values() for m in messages)) from None
            if job.sheet:
                self.stderr.write(f"Reading the sheet “{job.sheet}”.")
            elif job.encoding:
                self.stderr.write(f"Reading the text as {encoding_label(job.encoding)}.")
            if job.header_row > 1:
                self.stderr.write(f"The header is on row {job.header_row}; the rows above it are not read.")
        return self._run(job, actor, dry_run=dry_run, background=background, verbosity=options["verbosity"])

    def _resume(self, *, job: int, **options):
        found = ImportJob.objects.filter(pk=job).first()
        if found is None:
            raise self.fail(f"No import {job}.")
        actor = found.created_by or self._actor(None)
        return self._run(found, actor, dry_run=False, background=False, verbosity=options["verbosity"])

    def _errors(self, *, job: int, dry_run: bool, **options):
        import csv

        found = ImportJob.objects.filter(pk=job).first()
        if found is None:
            raise self.fail(f"No import {job}.")
        writer = csv.writer(self.stdout)
        writer.writerow(["row", "column", "reason"])
        errors = import_errors_read(job=found, dry_run=dry_run, actor=None, via="cli")
        writer.writerows(errors.values_list("row", "column", "message").iterator(chunk_size=2000))

    def _run(self, job: ImportJob, actor, *, dry_run: bool, background: bool, verbosity: int):
        if background:
            with transaction.atomic():  # a queue that cannot be reached leaves the job as it was
                job.status = ImportJob.Status.QUEUED
                job.save(update_fields=["status"])
                import_job_run.enqueue(job_id=job.pk, user_id=actor.pk, dry_run=dry_run)
            self.report(f"Import {job.pk} queued.", {"job": job.pk, "status": job.status})
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("dry run" if dry_run else "import"),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=verbosity == 0,
            transient=self.as_json,
        ) as progress:
            bar = progress.add_task("import", total=None)
            try:
                counts = import_run(job=job, actor=actor, dry_run=dry_run, progress=lambda n: progress.advance(bar, n))
            except ValidationError as error:
                raise self.fail(" ".join(m for messages in error.message_dict.values() for m in messages)) from None
        data = {"job": job.pk, "dry_run": dry_run, **asdict(counts)}
        if job.kind == "orders":
            summary = (
                f"{'Dry run of import' if dry_run else 'Import'} {job.pk}: {counts.rows:,} rows, "
                f"{counts.created:,} orders created with {counts.lines:,} lines, {counts.updated:,} continued, "
                f"{counts.unchanged:,} rows already imported, {counts.rejected:,} rejected."
            )
        elif job.kind == "interactions":
            summary = (
                f"{'Dry run of import' if dry_run else 'Import'} {job.pk}: {counts.rows:,} rows, "
                f"{counts.created:,} interactions created, {counts.unchanged:,} already recorded, "
                f"{counts.rejected:,} rejected."
            )
        else:
            summary = (
                f"{'Dry run of import' if dry_run else 'Import'} {job.pk}: {counts.rows:,} rows, "
                f"{counts.created:,} created, "
                f"{counts.updated:,} updated, {counts.unchanged:,} unchanged, {counts.rejected:,} rejected, "
                f"{counts.possible_duplicates:,} possible duplicates."
            )
        if counts.rejected:
            summary += f" Row errors: cim import errors {job.pk}{' --dry-run' if dry_run else ''}"
        self.report(summary, data)
