import argparse
import datetime

from django.core.exceptions import ValidationError
from django.http import Http404
from pydantic import ValidationError as PydanticValidationError

from cim.accounts.models import Team, User
from cim.core.commands import ReportingCommand
from cim.customers.models import Share
from cim.customers.selectors import InvalidNumber, customer_get
from cim.customers.services import PermissionDenied
from cim.customers.sharing import DEFAULT_DAYS, MAX_DAYS, share_create, share_revoke
from cim.customers.sharing_selectors import ShareFilter, share_get, share_list
from cim.segments.models import Segment


def _row(share: Share) -> dict:
    return {
        "id": share.pk,
        "customer": share.customer.number if share.customer_id else None,
        "segment": share.segment_id,
        "segment_name": share.segment.name if share.segment_id else None,
        "team": share.team.name,
        "include_subteams": share.include_subteams,
        "access": share.access,
        "reason": share.reason,
        "until": share.last_day,
        "shared_by": share.shared_by.username if share.shared_by_id else None,
        "created_at": share.created_at,
        "revoked_at": share.revoked_at,
        "active": share.is_active,
    }


class Command(ReportingCommand):
    help = (
        "Sharing (信息共享), as a user whose role and scope apply: `create --user U (--customer NUMBER | --segment ID) "
        "--team NAME --reason WHY [--department] [--access read|edit] [--until YYYY-MM-DD]`; "
        "`list --user U [--direction all|sent|received] [--state active|expired|revoked|any]`; `revoke ID --user U`."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="share a customer, a list or a segment with a team")
        subject = create.add_mutually_exclusive_group(required=True)
        subject.add_argument("--customer", help="customer number")
        subject.add_argument("--segment", type=int, help="list or segment id")
        create.add_argument("--team", required=True, help="the receiving team's name")
        create.add_argument("--department", action="store_true", help="also the teams under it")
        create.add_argument("--access", choices=Share.Access.values, default=Share.Access.READ)
        create.add_argument("--reason", required=True, help="why; shown to the team")
        create.add_argument(
            "--until",
            type=datetime.date.fromisoformat,
            default=None,
            help=f"last day, YYYY-MM-DD (default {DEFAULT_DAYS} days from today, at most {MAX_DAYS})",
        )
        listing = actions.add_parser("list", help="shares the user made and those their team receives")
        listing.add_argument("--direction", default="all", choices=["all", "sent", "received"])
        listing.add_argument("--state", default="active", choices=["active", "expired", "revoked", "any"])
        listing.add_argument("--customer", default=None, help="customer number")
        revoke = actions.add_parser("revoke", help="end a share now (the sharer or an administrator)")
        revoke.add_argument("id", type=int)
        for sub in (create, listing, revoke):
            sub.add_argument("--user", required=True, help="who acts (their role and record scope apply)")
            # SUPPRESS, so `--json` works before or after the action without one overriding the other.
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
            )

    def handle(self, *args, action: str, user: str, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise self.fail(f"No active user “{user}”.")
        try:
            getattr(self, f"_{action}")(actor=actor, **options)
        except (InvalidNumber, Http404) as error:
            raise self.fail(str(error) or "Not found.") from None
        except PermissionDenied:
            raise self.fail(f"The role of “{user}” may not do this.") from None
        except ValidationError as error:
            raise self.fail(" ".join(m for ms in error.message_dict.values() for m in ms)) from None

    def _create(self, *, actor, customer, segment, team, department, access, reason, until, **options):
        found = Team.objects.filter(name=team).first()
        if found is None:
            raise self.fail(f"No team named “{team}”.")
        share = share_create(
            actor=actor,
            customer=customer_get(user=actor, number=customer) if customer else None,
            segment=Segment.objects.filter(pk=segment).first() if segment else None,
            team=found,
            include_subteams=department,
            access=access,
            reason=reason,
            until=until,
        )
        share = share_get(user=actor, pk=share.pk)
        subject = share.customer.number if share.customer_id else f"“{share.segment.name}”"
        self.report(
            f"Share {share.pk}: {subject} with {found.name} ({share.access}) until {share.last_day:%Y-%m-%d}.",
            _row(share),
        )

    def _list(self, *, actor, direction, state, customer, **options):
        try:
            filters = ShareFilter(direction=direction, state=state, customer=customer)
        except PydanticValidationError:
            raise self.fail("Give a customer number of at most 40 characters.") from None
        rows = [_row(s) for s in share_list(user=actor, filters=filters)]
        if not self.as_json:
            for row in rows:
                subject = row["customer"] or f"“{row['segment_name']}”"
                by = row["shared_by"] or "—"
                self.stdout.write(
                    f"{row['id']:>6}  {subject:<18} → {row['team']:<12} {row['access']:<4}  "
                    f"until {row['until']:%Y-%m-%d}  by {by}: {row['reason']}"
                )
        self.report(f"{len(rows)} share(s).", {"shares": rows})

    def _revoke(self, *, actor, id: int, **options):
        share = share_revoke(share=share_get(user=actor, pk=id), actor=actor)
        self.report(f"Share {share.pk} with {share.team.name} revoked.", _row(share))
