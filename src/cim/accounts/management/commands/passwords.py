import argparse
import getpass
import sys

from django.conf import settings

from cim.accounts.passwords import (
    password_sha1,
    pwned_api_count,
    pwned_file_count,
    pwned_file_problem,
    pwned_file_summary,
)
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "Breached passwords: `check` reads a password (prompted for, or one line on stdin) and says whether "
        "CIM_PWNED_PASSWORDS_FILE or CIM_PWNED_PASSWORDS_API lists it, after a sanity report of the file. "
        "See docs/security.md#breached-passwords."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser("check", help="is a password breached? (an empty one checks the file only)")
        check.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
        )

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _check(self, **options):
        path, url = settings.CIM_PWNED_PASSWORDS_FILE, settings.CIM_PWNED_PASSWORDS_API
        if not path and not url:
            raise self.fail("Neither CIM_PWNED_PASSWORDS_FILE nor CIM_PWNED_PASSWORDS_API is set.")
        data: dict = {"file": path or None, "api": url or None}
        if path:
            if problem := pwned_file_problem(path):
                raise self.fail(problem)
            data["file_summary"] = summary = pwned_file_summary(path)
            if not self.as_json:
                self.stdout.write(
                    f"{path}: {summary['bytes']:,} bytes, about {summary['entries_estimate']:,} hashes, "
                    f"{summary['first']} … {summary['last']}"
                )
        if sys.stdin.isatty():
            password = getpass.getpass("Password to check (Enter: none): ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            self.report("No password given; the file looks right." if path else "No password given.", data)
            return
        sha1 = password_sha1(password)
        data["file_count"] = pwned_file_count(path=path, sha1=sha1) if path else None
        data["api_count"] = pwned_api_count(url=url, sha1=sha1) if url else None
        data["breached"] = bool(data["file_count"] or data["api_count"])
        if url and data["api_count"] is None and not self.as_json:
            self.stdout.write(f"{url} could not be reached.")
        sources = [name for name, key in (("the file", "file_count"), ("the API", "api_count")) if data[key]]
        self.report(
            f"Breached: listed by {' and '.join(sources)}." if sources else "Not found in breached passwords.", data
        )
        if url and data["api_count"] is None and not data["breached"]:
            raise self.fail("The Pwned Passwords API could not be asked.")
