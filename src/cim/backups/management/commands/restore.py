import time
from pathlib import Path

from cim.backups.management.commands.backup import confirm
from cim.backups.models import Backup
from cim.backups.services import BackupError, backup_dir, backup_restore
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Replace the database (and uploaded files) by a backup's: `cim restore FILE|ID [--yes]`. Stop the web "
        "server and the worker first. Erasures made since the backup are replayed (database_restored)."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", help="a backup file, or a backup's id from `cim backup list`")
        parser.add_argument("--yes", action="store_true", help="do not ask before overwriting the database")
        parser.add_argument("--no-uploads", action="store_true", help="leave the uploaded files as they are")

    def handle(self, *args, backup: str, yes: bool, no_uploads: bool, **options):
        from django.db import connection

        path = Path(backup)
        if backup.isdigit() and not path.exists():
            found = Backup.objects.filter(pk=int(backup)).first()
            if found is None:
                raise self.fail(f"No backup {backup} in the catalog (see `cim backup list`), and no such file.")
            path = backup_dir() / found.file_name
        if not path.is_file():
            raise self.fail(f"{path} does not exist.")
        where = connection.settings_dict["NAME"]
        confirm(self, f"This overwrites the {connection.vendor} database {where} with {path.name}.", yes)
        started = time.monotonic()
        try:
            manifest = backup_restore(path=path, uploads=not no_uploads)
        except BackupError as error:
            raise self.fail(f"Restore failed: {error}") from None
        seconds = round(time.monotonic() - started, 2)
        rows = sum(manifest["row_counts"].values())
        self.report(
            f"Restored {path.name} (taken {manifest['created_at']}): {rows:,} rows, "
            f"{manifest['uploads']} uploaded files, in {seconds:.1f} s.",
            {"file": path.name, "created_at": manifest["created_at"], "row_counts": manifest["row_counts"]}
            | {"seconds": seconds},
        )
