"""The `cim` command: Django's management commands, usable from any directory."""

import os
import sys

from django.core.management import execute_from_command_line


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    args = sys.argv[1:] if argv is None else argv
    execute_from_command_line(["cim", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
