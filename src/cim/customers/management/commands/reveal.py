from django.core.exceptions import ValidationError
from django.http import Http404

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.customers.selectors import InvalidNumber, customer_get
from cim.customers.services import PermissionDenied, customer_reveal


class Command(ReportingCommand):
    help = (
        "Print the unmasked values of sensitive fields of a customer, as a user whose role may reveal them "
        "(customer.reveal); recorded in the audit log like the Reveal button."
    )

    def add_arguments(self, parser):
        parser.add_argument("number", help="customer number")
        parser.add_argument("fields", nargs="+", help="phone.number, email.address, address.street, customer.birthday…")
        parser.add_argument("--user", required=True, help="who reveals (their role and record scope apply)")

    def handle(self, *args, number: str, fields: list[str], user: str, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise self.fail(f"No active user “{user}”.")
        try:
            customer = customer_get(user=actor, number=number)
            values = customer_reveal(customer=customer, fields=fields, actor=actor)
        except (InvalidNumber, Http404) as error:
            raise self.fail(str(error)) from None
        except PermissionDenied:
            raise self.fail(f"The role of “{user}” may not reveal masked data.") from None
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        if not self.as_json:
            for key, found in values.items():
                self.stdout.write(f"{key}: " + (", ".join(map(str, found)) or "—"))
        self.report(f"Revealed {len(values)} fields of {customer.number}; recorded in the audit log.", values)
