import argparse
from datetime import UTC
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.backups.jsonl import JsonlError, export_jsonl, import_jsonl
from cim.backups.models import Backup
from cim.backups.selectors import backup_health, backup_list
from cim.backups.services import (
    BackupError,
    backup_catalog_rebuild,
    backup_create,
    backup_dir,
    backup_prune,
    backup_verify,
)
from cim.core.commands import ReportingCommand


def confirm(command, question: str, yes: bool) -> None:
    """Go on with `--yes`, or when a person at a terminal types "yes"; otherwise refuse."""
    if yes:
        return
    import sys

    if not sys.stdin.isatty():
        raise command.fail(f"{question} Refused: pass --yes to confirm (no terminal to ask).")
    if input(f"{question} Type 'yes' to go on: ").strip().lower() != "yes":
        raise command.fail("Cancelled.")


class Command(ReportingCommand):
    help = (
        "Backups: create, verify, list, prune, rebuild-catalog; export-jsonl / import-jsonl to move between "
        "SQLite and PostgreSQL. Restore with `cim restore`. See docs/backup.md."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a backup now (compressed, encrypted, with a manifest)")
        create.add_argument("--kind", choices=Backup.Kind.values, default=Backup.Kind.MANUAL)
        create.add_argument("--verify", action="store_true", help="verify it straight away")
        verify = sub.add_parser("verify", help="checksum, decrypt, check the database and compare row counts")
        verify.add_argument("id", nargs="?", type=int, help="the backup's id (see `cim backup list`)")
        verify.add_argument("--latest", action="store_true", help="the newest backup")
        listing = sub.add_parser("list", help="the catalog, newest first")
        listing.add_argument("--limit", type=int, default=50)
        prune = sub.add_parser("prune", help="apply the retention (CIM_BACKUP_KEEP_DAILY/_WEEKLY/_MONTHLY)")
        rebuild = sub.add_parser("rebuild-catalog", help="rebuild the catalog from the manifests in the backup folder")
        export = sub.add_parser("export-jsonl", help="write every table as JSON Lines into a new folder")
        export.add_argument("folder", type=Path)
        imp = sub.add_parser("import-jsonl", help="replace every table's rows by an export's (e.g. on PostgreSQL)")
        imp.add_argument("folder", type=Path)
        imp.add_argument("--yes", action="store_true", help="do not ask before replacing the data")
        for subparser in (create, verify, listing, prune, rebuild, export, imp):
            subparser.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
            )

    def handle(self, *args, action: str, **options):
        return getattr(self, "_" + action.replace("-", "_"))(**options)

    def _progress(self, label: str, verbosity: int):
        return Progress(
            SpinnerColumn(),
            TextColumn(label),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=verbosity == 0,
            transient=True,
        )

    def _create(self, *, kind: str, verify: bool, verbosity: int = 1, **options):
        with self._progress("backup", verbosity) as progress:
            progress.add_task("", total=None)
            try:
                backup = backup_create(kind=kind)
            except BackupError as error:
                raise self.fail(f"Backup failed: {error}") from None
            if verify:
                backup = backup_verify(backup=backup)
        self.report(
            f"Backup {backup.pk} {backup.file_name}: {backup.size:,} bytes, {sum(backup.row_counts.values()):,} rows, "
            f"{backup.uploads} uploaded files, {backup.status}, {backup.duration:.1f} s.",
            _out(backup),
        )
        if backup.status == Backup.Status.FAILED:
            raise self.fail(f"Verification failed: {backup.error}")

    def _verify(self, *, id: int | None, latest: bool, verbosity: int = 1, **options):
        if (id is None) == (not latest):
            raise self.fail("Give a backup id or --latest.")
        query = Backup.objects.exclude(status=Backup.Status.RUNNING)
        backup = query.order_by("-created_at").first() if latest else query.filter(pk=id).first()
        if backup is None:
            raise self.fail("No such backup (see `cim backup list`).")
        with self._progress("verify", verbosity) as progress:
            progress.add_task(backup.file_name, total=None)
            backup = backup_verify(backup=backup)
        if backup.status != Backup.Status.VERIFIED:
            self.report(f"Backup {backup.pk} failed verification.", _out(backup))
            raise self.fail(f"Backup {backup.pk} {backup.file_name}: {backup.error}")
        self.report(
            f"Backup {backup.pk} {backup.file_name} verified: checksum, decryption, database and row counts.",
            _out(backup),
        )

    def _list(self, *, limit: int, **options):
        rows = list(backup_list()[:limit])
        health = backup_health()
        if not self.as_json:
            self.stdout.write(
                f"{'id':>5}  {'created (UTC)':19}  {'kind':8} {'engine':10} {'size':>14}  {'status':9} file"
            )
            for b in rows:
                created = b.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
                self.stdout.write(
                    f"{b.pk:>5}  {created}  {b.kind:8} {b.engine:10} {b.size:>14,}  {b.status:9} {b.file_name}"
                )
        state = "none yet" if health.last is None else ("TOO OLD" if health.stale else "recent")
        self.report(
            f"{len(rows)} backups in {backup_dir()}; last backup: {state}; "
            f"last verified: {health.last_verified.file_name if health.last_verified else 'none'}.",
            {"backups": [_out(b) for b in rows], "stale": health.stale, "folder": str(backup_dir())},
        )

    def _prune(self, **options):
        names = backup_prune()
        self.report(f"Pruned {len(names)} backups.", {"pruned": names})

    def _rebuild_catalog(self, **options):
        rows = backup_catalog_rebuild()
        self.report(f"Catalog rebuilt from {rows} manifests in {backup_dir()}.", {"rebuilt": rows})

    def _export_jsonl(self, *, folder: Path, verbosity: int = 1, **options):
        with self._progress("export", verbosity) as progress:
            bar = progress.add_task("", total=None)
            try:
                manifest = export_jsonl(
                    folder, progress=lambda model, rows: progress.update(bar, description=f"{model} {rows:,}")
                )
            except JsonlError as error:
                raise self.fail(str(error)) from None
        rows = sum(t["rows"] for t in manifest["tables"])
        self.report(
            f"Exported {len(manifest['tables'])} tables, {rows:,} rows, into {folder}.", {"tables": manifest["tables"]}
        )

    def _import_jsonl(self, *, folder: Path, yes: bool, verbosity: int = 1, **options):
        from django.db import connection

        confirm(
            self,
            f"This replaces every row of the {connection.vendor} database {connection.settings_dict['NAME']}.",
            yes,
        )
        with self._progress("import", verbosity) as progress:
            bar = progress.add_task("", total=None)
            try:
                imported = import_jsonl(
                    folder, progress=lambda model, rows: progress.update(bar, description=f"{model} {rows:,}")
                )
            except JsonlError as error:
                raise self.fail(f"Import refused, nothing changed: {error}") from None
        self.report(
            f"Imported {len(imported)} tables, {sum(imported.values()):,} rows; "
            "row counts and checksums match the export.",
            {"tables": imported},
        )


def _out(backup: Backup) -> dict:
    return {
        "id": backup.pk,
        "file": backup.file_name,
        "kind": backup.kind,
        "engine": backup.engine,
        "size": backup.size,
        "sha256": backup.sha256,
        "status": backup.status,
        "error": backup.error,
        "created_at": backup.created_at,
        "verified_at": backup.verified_at,
        "row_counts": backup.row_counts,
    }
