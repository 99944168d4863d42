"""What every `cim` command that reports shares: `--json`, a one-line summary, and errors as one line."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder


class ReportingCommand(BaseCommand):
    """A command whose last line is a summary, or with `--json` one JSON object for scripts."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
        return parser

    def execute(self, *args, **options):
        self.as_json = options.get("json", False)
        return super().execute(*args, **options)

    def report(self, summary: str, data: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, cls=DjangoJSONEncoder) if self.as_json else summary)

    def fail(self, message: str) -> CommandError:
        """The error to raise: Django prints it as one line on stderr and exits with status 1."""
        return CommandError(message)
