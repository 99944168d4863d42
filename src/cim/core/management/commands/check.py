from django.conf import settings
from django.core.management.base import CommandError, SystemCheckError
from django.core.management.commands.check import Command as DjangoCheck
from django.db import DatabaseError, connection

from cim.core.commands import ReportingCommand
from cim.customers.models import Customer


class Command(ReportingCommand, DjangoCheck):
    """Django's system checks (same options), then what an operator asks first: which database, where, how full."""

    help = (
        "Run Django's system checks and report the database engine, data directory and number of customers. "
        "With --deploy: production readiness, Django's deployment checks and CIM's own (tag `cim`: backups, keys, "
        "settings); --tag cim runs CIM's alone. Exits 1 on an error (see docs/check.md)."
    )

    def handle(self, *app_labels, **options):
        problem = None
        try:
            super().handle(*app_labels, **options)
        except SystemCheckError as error:
            self.stderr.write(str(error))
            problem = "System checks found errors (listed above)."
        report = {
            "checks_ok": problem is None,
            "database": connection.vendor,
            "database_engine": settings.DATABASES["default"]["ENGINE"],
            "database_version": ".".join(map(str, connection.Database.sqlite_version_info))
            if connection.vendor == "sqlite"
            else None,
            "data_dir": str(settings.DATA_DIR),
            "customers": None,
        }
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SHOW server_version")
                    report["database_version"] = cursor.fetchone()[0]
            report["customers"] = Customer.objects.count()
        except DatabaseError as error:
            problem = problem or f"The database cannot be read ({str(error).splitlines()[0]}); run `cim migrate`."
        if not self.as_json:
            for key in ("database", "database_version", "data_dir", "customers"):
                self.stdout.write(f"{key.replace('_', ' '):>17}: {report[key] if report[key] is not None else '–'}")
        self.report("Checks passed." if problem is None else "Checks failed.", report)
        if problem:
            raise CommandError(problem)
