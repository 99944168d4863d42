import argparse
from pathlib import Path

from django.core.exceptions import ValidationError
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cim.accounts.models import User
from cim.accounts.roles import Perm, has_perm
from cim.audit.filters import AuditFilter
from cim.audit.models import AuditChainHead
from cim.audit.reports import EXPORT_FORMATS, audit_export, audit_verify
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "The audit log: `verify` recomputes the HMAC chain over every event and reports the first changed, deleted "
        "or moved one (exit status 1); `export --format csv|xlsx --output FILE` writes the filtered log."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        verify = actions.add_parser("verify", help="verify the chain over every event")
        verify.add_argument("--batch-size", type=int, default=5000, help="events read per query (default 5000)")
        export = actions.add_parser("export", help="export the audit log, filtered")
        export.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, default="csv")
        export.add_argument("--output", required=True, help="file to write")
        export.add_argument("--user", required=True, help="username recorded as the exporter (needs audit.view)")
        for name, field in AuditFilter.model_fields.items():
            export.add_argument("--" + name.replace("_", "-"), dest=f"filter_{name}", help=field.description)
        for sub in (verify, export):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _progress(self, quiet: bool, label: str) -> Progress:
        return Progress(
            SpinnerColumn(),
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=quiet,
            transient=True,
        )

    def _verify(self, *, batch_size: int, verbosity: int, **options):
        if batch_size < 1:
            raise self.fail("--batch-size must be at least 1.")
        total = AuditChainHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
        with self._progress(verbosity == 0, "verify") as progress:
            task = progress.add_task("verify", total=total or None)
            result = audit_verify(actor=None, batch_size=batch_size, progress=lambda n: progress.advance(task, n))
        if result.ok or self.as_json:
            self.report(result.message, result.as_dict())
        if not result.ok:
            raise self.fail(f"The audit chain is broken: {result.message}")

    def _export(self, *, fmt: str, output: str, user: str, verbosity: int, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise self.fail(f"No active user named “{user}”.")
        if not has_perm(actor, Perm.AUDIT_VIEW):
            raise self.fail(f"The role of “{user}” does not allow reading the audit log.")
        given = {name: options.get(f"filter_{name}") for name in AuditFilter.model_fields}
        try:
            filters = AuditFilter.model_validate({k: v for k, v in given.items() if v})
        except PydanticValidationError as error:
            problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in error.errors())
            raise self.fail(f"Invalid filters: {problems}") from None
        path = Path(output)
        partial = path.with_name(path.name + ".part")
        try:
            with (
                partial.open("wb") as out,
                self._progress(verbosity == 0, "export") as progress,
            ):
                task = progress.add_task("export", total=None)
                rows = audit_export(
                    actor=actor, filters=filters, fmt=fmt, out=out, progress=lambda n: progress.advance(task, n)
                )
            partial.replace(path)
        except OSError as error:
            raise self.fail(f"Cannot write {path}: {error.strerror}") from None
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        finally:
            partial.unlink(missing_ok=True)
        summary = f"Exported {rows:,} audit events as {fmt} to {output}."
        self.report(summary, {"rows": rows, "format": fmt, "output": output})
