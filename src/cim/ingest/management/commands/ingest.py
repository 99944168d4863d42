import argparse

from django.core.exceptions import ValidationError

from cim.core.commands import ReportingCommand
from cim.customers.choices import SourceChannel
from cim.ingest.models import EventSource
from cim.ingest.sources import event_source_create


class Command(ReportingCommand):
    help = "Event ingestion: `source create NAME [--channel C]` prints the new source's write key once; `source list`."

    def add_arguments(self, parser):
        subjects = parser.add_subparsers(dest="subject", required=True)
        source = subjects.add_parser("source", help="the web sites and apps that send events")
        actions = source.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="add a source; its write key is printed once")
        create.add_argument("name")
        create.add_argument(
            "--channel",
            default="",
            choices=SourceChannel.values,
            help="the source channel of its events and new customers (default: guessed from each SDK)",
        )
        listing = actions.add_parser("list", help="every source, with its write key's prefix")
        for sub in (create, listing):
            # SUPPRESS, so `--json` works before or after the action without one overriding the other.
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
            )

    def handle(self, *args, subject: str, action: str, **options):
        getattr(self, f"_{subject}_{action}")(**options)

    def _source_create(self, *, name: str, channel: str, **options):
        try:
            source, write_key = event_source_create(name=name, source_channel=channel, actor=None)
        except ValidationError as error:
            raise self.fail(" ".join(m for messages in error.message_dict.values() for m in messages)) from None
        if not self.as_json:
            self.stdout.write("Store this write key now; it is not shown again:")
            self.stdout.write(write_key)
        self.report(
            f"Event source “{source.name}” created (write key {source.write_key_prefix}…).",
            {
                "name": source.name,
                "source_channel": source.source_channel,
                "write_key_prefix": source.write_key_prefix,
                "write_key": write_key,
            },
        )

    def _source_list(self, **options):
        rows = [
            {
                "name": s.name,
                "source_channel": s.source_channel,
                "write_key_prefix": s.write_key_prefix,
                "is_active": s.is_active,
                "created_at": s.created_at,
            }
            for s in EventSource.objects.order_by("name")
        ]
        if not self.as_json:
            for row in rows:
                state = "active" if row["is_active"] else "inactive"
                self.stdout.write(
                    f"{row['write_key_prefix']}…  {state:<8} {row['source_channel'] or '-':<12} {row['name']}"
                )
        self.report(f"{len(rows)} event source(s).", {"sources": rows})
