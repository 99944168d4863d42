import json
import time

from django.core.management.base import BaseCommand

from cim.search.services import search_index_rebuild


class Command(BaseCommand):
    help = "`cim search reindex` rebuilds every customer's search document and the phone and email match keys."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["reindex"])
        parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    def handle(self, *args, action, **options):
        started = time.monotonic()
        customers = search_index_rebuild()
        seconds = round(time.monotonic() - started, 2)
        if options["json"]:
            self.stdout.write(json.dumps({"customers": customers, "seconds": seconds}))
        else:
            self.stdout.write(f"Search index rebuilt: {customers:,} customers in {seconds} s.")
