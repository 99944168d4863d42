from django.db import transaction
from django.urls import reverse
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cim.accounts.models import User
from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.activities.demo import demo_history_load
from cim.core.commands import ReportingCommand
from cim.customers.demo import demo_load
from cim.customers.models import Customer

ADMIN = "admin"


class Command(ReportingCommand):
    help = (
        "First-run setup, safe to repeat: create the administrator `admin` with a one-time password when no "
        "administrator exists, and load demo customers into an empty database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1000, help="demo customers for an empty database")
        parser.add_argument("--no-demo", action="store_true", help="never load demo customers")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the server will answer")

    def handle(self, *args, customers: int, no_demo: bool, base_url: str, **options):
        login_url = base_url.rstrip("/") + reverse("login")
        result = {
            "login_url": login_url,
            "admin_created": False,
            "username": None,
            "password": None,
            "demo_customers": 0,
            "demo_orders": 0,
        }
        with transaction.atomic():
            admin = User.objects.filter(role=Role.ADMINISTRATOR, is_active=True).order_by("pk").first()
            if admin is None:
                if User.objects.filter(username=ADMIN).exists():
                    raise self.fail(
                        f"User “{ADMIN}” exists but is not an active administrator; make one with "
                        "`cim createuser NAME --role administrator`."
                    )
                admin, password = user_create(username=ADMIN, role=Role.ADMINISTRATOR)
                result.update(admin_created=True, password=password)
        result["username"] = admin.username
        if result["admin_created"]:
            if not self.as_json:
                self.stdout.write(self.style.SUCCESS("\nAdministrator created. Sign in once with this password:\n"))
                self.stdout.write(
                    f"    URL:       {login_url}\n    username:  {admin.username}\n"
                    f"    password:  {result['password']}\n"
                )
                self.stdout.write(
                    "It is shown only now; you will be asked to choose your own, then to set up two-factor "
                    "authentication with an authenticator app (mandatory for administrators)."
                )
        elif not self.as_json:
            self.stdout.write(
                f"Administrator “{admin.username}” exists. Forgot the password? `cim changepassword {admin.username}`"
            )
        if not no_demo and customers > 0 and not Customer.objects.exists():
            with Progress(
                TextColumn("demo data"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                disable=options["verbosity"] == 0,
                transient=True,
            ) as bar:
                task = bar.add_task("demo", total=customers)
                loaded = demo_load(customers=customers, progress=lambda n: bar.advance(task, n))
            result["demo_customers"] = loaded.customers
            result["demo_orders"] = demo_history_load(actor=admin)
        summary = (
            "Ready"
            + (
                f"; {result['demo_customers']:,} demo customers loaded with {result['demo_orders']:,} orders"
                if result["demo_customers"]
                else ""
            )
            + f". Sign in at {login_url}"
        )
        self.report(summary, result)
