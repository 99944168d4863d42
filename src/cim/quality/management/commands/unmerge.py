from django.core.exceptions import ValidationError

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.quality.merge import customer_unmerge
from cim.quality.models import MergeRecord


class Command(ReportingCommand):
    help = "Undo a merge: every customer and related record goes back exactly as it was."

    def add_arguments(self, parser):
        parser.add_argument("merge", type=int, help="the merge's id (printed by `cim merge`, shown on the page)")

    def handle(self, *args, merge: int, **options):
        record = MergeRecord.objects.filter(pk=merge).first()
        if record is None:
            raise self.fail(f"No merge {merge}.")
        actor = User.objects.filter(is_active=True, role="administrator").order_by("pk").first()
        try:
            customer_unmerge(record=record, actor=actor)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        self.report(f"Merge {merge} undone.", {"merge": merge, "undone": True})
