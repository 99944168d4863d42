import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.accounts.models import Team, User
from cim.core.commands import ReportingCommand
from cim.customers.filters import CustomerFilter
from cim.customers.services import PermissionDenied
from cim.ingest.export import FORMATS, HEADERS, customers_export

# Filters given by name (`--owner`, `--team`) rather than by id.
NAMED_FILTERS = frozenset({"owner_id", "team_id"})


class Command(ReportingCommand):
    help = "Export customers as CSV (UTF-8 with BOM), XLSX or JSON Lines, within a user's record scope."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["customers"])
        parser.add_argument("--format", dest="fmt", choices=list(FORMATS), default="csv")
        parser.add_argument("--fields", help="comma-separated column names, in order (default: all)")
        parser.add_argument("--headers", choices=HEADERS, default="names", help="machine names or translated labels")
        parser.add_argument(
            "--language", choices=[code for code, _name in settings.LANGUAGES], help="language of --headers labels"
        )
        parser.add_argument("--output", help="file to write (default: standard output; required for xlsx)")
        parser.add_argument("--user", required=True, help="username whose record scope and rights apply")
        filters = parser.add_argument_group("filters (as on the customer list)")
        filters.add_argument("--owner", help="owner's username")
        filters.add_argument("--team", help="team name")
        for name, field in CustomerFilter.model_fields.items():
            if name not in NAMED_FILTERS:
                repeated = name in ("tag", "cf")
                filters.add_argument(
                    "--" + name.replace("_", "-"),
                    dest=f"filter_{name}",
                    action="append" if repeated else "store",
                    metavar=name.upper(),
                    help=(field.description or "") + (" (repeatable)" if repeated else ""),
                )

    def handle(self, *args, fmt: str, fields, headers, language, output, user, verbosity: int, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise self.fail(f"No active user named “{user}”.")
        if fmt == "xlsx" and not output:
            raise self.fail("An xlsx export needs --output FILE.")
        filters = self._filters(options)

        def export_to(out) -> int:
            return self._export(
                out, user=actor, filters=filters, fmt=fmt, fields=fields, headers=headers, quiet=verbosity == 0
            )

        with translation.override(language or translation.get_language()):
            rows = self._to_file(Path(output), export_to) if output else self._to_stdout(export_to)
        summary = f"Exported {rows:,} customers as {fmt} to {output or 'standard output'}."
        report = {"rows": rows, "format": fmt, "output": output}
        if output:
            self.report(summary, report)
        else:
            # Standard output holds the file: the summary goes to standard error.
            self.stderr.write(json.dumps(report, ensure_ascii=False) if self.as_json else summary, style_func=str)

    def _filters(self, options) -> CustomerFilter:
        given = {name: options.get(f"filter_{name}") for name in CustomerFilter.model_fields}
        data = {name: value for name, value in given.items() if value}
        if options["owner"]:
            owner = User.objects.filter(username=options["owner"]).first()
            if owner is None:
                raise self.fail(f"No user named “{options['owner']}”.")
            data["owner_id"] = owner.pk
        if options["team"]:
            team = Team.objects.filter(name=options["team"]).first()
            if team is None:
                raise self.fail(f"No team named “{options['team']}”.")
            data["team_id"] = team.pk
        try:
            return CustomerFilter.model_validate(data)
        except PydanticValidationError as error:
            problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in error.errors())
            raise self.fail(f"Invalid filters: {problems}") from None

    def _to_file(self, path: Path, export_to) -> int:
        """Write next to the target and rename at the end, so a failed export never leaves a half file."""
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as out:
                rows = export_to(out)
            partial.replace(path)
        except OSError as error:
            raise self.fail(f"Cannot write {path}: {error.strerror}") from None
        finally:
            partial.unlink(missing_ok=True)
        return rows

    def _to_stdout(self, export_to) -> int:
        try:
            rows = export_to(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): say so in one line, not with a traceback, and exit non-zero.
            raise self.fail("Standard output was closed before the export finished.") from None
        return rows

    def _export(self, out, *, user, filters, fmt, fields, headers, quiet: bool) -> int:
        # No total: counting a large filtered list first is slow (see `customer_count`); the bar shows rows so far.
        with Progress(
            SpinnerColumn(),
            TextColumn("export {task.completed:,.0f} rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=quiet,
            transient=True,
        ) as progress:
            task = progress.add_task("export", total=None)
            try:
                return customers_export(
                    user=user,
                    filters=filters,
                    fmt=fmt,
                    fields=fields.split(",") if fields else None,
                    headers=headers,
                    out=out,
                    progress=lambda n: progress.advance(task, n),
                )
            except PermissionDenied:
                raise self.fail(f"The role of “{user.username}” does not allow exporting customers.") from None
            except ValidationError as error:
                raise self.fail(" ".join(error.messages)) from None
