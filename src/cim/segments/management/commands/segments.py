import argparse
import json
from pathlib import Path

from django.core.exceptions import ValidationError

from cim.accounts.models import User
from cim.core.commands import ReportingCommand
from cim.customers.models import Customer
from cim.segments.models import Segment
from cim.segments.pipeline import customer_analytics_refresh
from cim.segments.selectors import segment_list
from cim.segments.services import segment_create, segment_members_add, segment_refresh


class Command(ReportingCommand):
    help = (
        "Segments: `list`; `refresh` (order totals, RFM, lifecycle, then every segment and its tag rule, as the "
        "worker does hourly; or one segment with --id); `create NAME --rules FILE|JSON [--tag T] [--static]`; "
        "`add ID NUMBER…` puts customers on a static list. Export a segment with `cim export customers --segment ID`."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="every segment with its size")
        refresh = actions.add_parser("refresh", help="refresh scores, stages and every segment now")
        refresh.add_argument("--id", type=int, help="only this segment (its members and tag rule)")
        create = actions.add_parser("create", help="create a segment")
        create.add_argument("name")
        create.add_argument("--rules", help="the rule tree as JSON, or a file holding it")
        create.add_argument("--tag", default="", help="tag rule: members carry this tag")
        create.add_argument("--static", action="store_true", help="a static list (members added by hand)")
        create.add_argument("--description", default="")
        create.add_argument("--user", required=True, help="username the segment is created as")
        add = actions.add_parser("add", help="add customers to a static list")
        add.add_argument("id", type=int)
        add.add_argument("numbers", nargs="+", help="customer numbers")
        add.add_argument("--user", required=True, help="username who adds them")
        for sub in (listing, refresh, create, add):
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ValidationError as error:
            raise self.fail(" ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise self.fail(f"No active user {username!r}.")
        return user

    def _segment(self, pk: int) -> Segment:
        segment = Segment.objects.filter(pk=pk).first()
        if segment is None:
            raise self.fail(f"No segment {pk}.")
        return segment

    def _list(self, **options):
        rows = [
            {"id": s.pk, "name": s.name, "kind": s.kind, "tag": s.tag.name if s.tag else None, "size": s.size}
            for s in segment_list()
        ]
        lines = [
            f"{r['id']:>5}  {r['name']}  ({r['kind']}{', tag ' + r['tag'] if r['tag'] else ''}): {r['size']:,}"
            for r in rows
        ]
        self.report("\n".join([*lines, f"{len(rows)} segments."]), {"segments": rows})

    def _refresh(self, *, id, **options):
        if id is not None:
            run = segment_refresh(segment=self._segment(id))
            self.report(
                f"{run.segment.name}: {run.entered:,} joined, {run.left:,} left, {run.segment.size:,} customers.",
                {"id": id, "entered": run.entered, "left": run.left, "size": run.segment.size},
            )
            return
        run = customer_analytics_refresh()
        timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.seconds.items())
        self.report(
            f"Refreshed: {run.scores_changed:,} customer scores and {run.stages_changed:,} lifecycle stages changed; "
            f"{run.segments} segments, {run.changed_members:,} memberships changed ({timings}).",
            vars(run),
        )

    def _create(self, *, name, rules, tag, static, description, user, **options):
        tree = None
        if rules:
            source = Path(rules).read_text("utf-8") if Path(rules).is_file() else rules
            try:
                tree = json.loads(source)
            except ValueError as error:
                raise self.fail(f"--rules is not JSON: {error}") from None
        segment = segment_create(
            actor=self._user(user),
            name=name,
            kind=Segment.Kind.STATIC if static else Segment.Kind.DYNAMIC,
            rules=tree,
            tag=tag,
            description=description,
        )
        self.report(
            f"Segment {segment.pk} “{segment.name}”: {segment.size:,} customers.",
            {"id": segment.pk, "size": segment.size},
        )

    def _add(self, *, id, numbers, user, **options):
        segment = self._segment(id)
        found = dict(Customer.objects.filter(number__in=numbers).values_list("number", "pk"))
        missing = [n for n in numbers if n not in found]
        if missing:
            raise self.fail(f"No such customer: {', '.join(missing[:20])}.")
        added = segment_members_add(segment=segment, customer_ids=[found[n] for n in numbers], actor=self._user(user))
        segment.refresh_from_db()
        self.report(f"{added:,} added; {segment.name} holds {segment.size:,}.", {"added": added, "size": segment.size})
