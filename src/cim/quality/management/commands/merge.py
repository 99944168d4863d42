from django.core.exceptions import ValidationError

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.customers.models import Customer
from cim.customers.numbering import normalize_number
from cim.quality.merge import customer_merge, merge_plan


class Command(ReportingCommand):
    help = "Merge customers into a survivor (undo with `cim unmerge MERGE_ID`); --dry-run shows the resulting record."

    def add_arguments(self, parser):
        parser.add_argument("survivor", help="the number of the customer that stays")
        parser.add_argument("duplicates", nargs="+", help="the numbers of the customers merged into it")
        parser.add_argument(
            "--choose", action="append", default=[], metavar="FIELD=NUMBER", help="keep this record's value of FIELD"
        )
        parser.add_argument("--dry-run", action="store_true", help="show the survivor's values after; merge nothing")

    def _customer(self, number: str) -> Customer:
        customer = Customer.objects.filter(number=normalize_number(number)).first()
        if customer is None:
            raise self.fail(f"No customer {number}.")
        return customer

    def handle(self, *args, survivor: str, duplicates: list[str], choose: list[str], dry_run: bool, **options):
        kept = self._customer(survivor)
        merged = [self._customer(number) for number in duplicates]
        by_number = {c.number: c.pk for c in [kept, *merged]}
        choices = {}
        for item in choose:
            name, _, number = item.partition("=")
            if normalize_number(number) not in by_number:
                raise self.fail(f"--choose {item}: NUMBER must be one of the customers merged.")
            choices[name] = by_number[normalize_number(number)]
        if dry_run:
            plan = merge_plan(survivor=kept, merged=merged, choices=choices)
            if not self.as_json:
                for name, value in plan.values.items():
                    self.stdout.write(f"{name}: {value!r} (from {plan.provenance[name]})")
            self.report(
                f"Dry run: {len(merged)} customers would merge into {kept.number}.",
                {"dry_run": True, "survivor": kept.number, "values": plan.values, "provenance": plan.provenance},
            )
            return
        actor = User.objects.filter(is_active=True, role="administrator").order_by("pk").first()
        try:
            record = customer_merge(survivor=kept, duplicates=merged, actor=actor, choices=choices)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        self.report(
            f"Merge {record.pk}: {', '.join(c.number for c in merged)} merged into {kept.number}. "
            f"Undo with: cim unmerge {record.pk}",
            {"merge": record.pk, "survivor": kept.number, "merged": [c.number for c in merged]},
        )
