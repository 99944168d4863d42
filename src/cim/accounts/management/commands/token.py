import argparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from cim.accounts.models import ApiToken, User
from cim.accounts.services import api_token_create, api_token_revoke
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = (
        "API tokens: `create USER [--name N] [--scope read|write] [--days D]` prints a new token once; "
        "`revoke PREFIX`; `list USER`."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="issue a token for USER; it is printed once")
        create.add_argument("user")
        create.add_argument("--name", default="", help="what the token is for")
        create.add_argument(
            "--scope",
            choices=ApiToken.Scope.values,
            default=ApiToken.Scope.READ,
            help="read: GET requests only (default); write: every request the user's role allows",
        )
        create.add_argument(
            "--days", type=int, default=None, help=f"lifetime in days (default {settings.CIM_API_TOKEN_DAYS})"
        )
        revoke = actions.add_parser("revoke", help="revoke the token whose prefix (cim_…, 12 characters) is given")
        revoke.add_argument("prefix")
        listing = actions.add_parser("list", help="the tokens of USER, without their secret part")
        listing.add_argument("user")
        for sub in (create, revoke, listing):
            # SUPPRESS, so `--json` works before or after the action without one overriding the other.
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object as the last line"
            )

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise self.fail(f"No user named “{username}”.")
        if not user.is_active:
            raise self.fail(f"User “{username}” is deactivated.")
        return user

    def _create(self, *, user: str, name: str, scope: str, days: int | None, **options):
        try:
            token, raw = api_token_create(user=self._user(user), name=name, scope=scope, days=days)
        except ValidationError as error:
            raise self.fail(" ".join(m for ms in error.message_dict.values() for m in ms)) from None
        if not self.as_json:
            self.stdout.write("Store this token now; it is not shown again:")
            self.stdout.write(raw)
        self.report(
            f"Token {token.prefix}… ({token.scope}) created for “{user}”, expires {token.expires_at:%Y-%m-%d}.",
            {
                "user": user,
                "name": name,
                "prefix": token.prefix,
                "scope": token.scope,
                "expires_at": token.expires_at,
                "token": raw,
            },
        )

    def _revoke(self, *, prefix: str, **options):
        tokens = list(ApiToken.objects.filter(prefix__startswith=prefix).select_related("user")[:2])
        if len(prefix) < 8 or len(tokens) > 1:
            raise self.fail("Give the token's 12-character prefix (see `cim token list USER`).")
        if not tokens:
            raise self.fail(f"No token with prefix “{prefix}”.")
        token = api_token_revoke(token=tokens[0], actor=None)
        self.report(
            f"Token {token.prefix}… of “{token.user.username}” revoked.",
            {"prefix": token.prefix, "user": token.user.username, "revoked_at": token.revoked_at},
        )

    def _list(self, *, user: str, **options):
        now = timezone.now()
        rows = [
            {
                "prefix": t.prefix,
                "name": t.name,
                "scope": t.scope,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in ApiToken.objects.filter(user=self._user(user)).order_by("created_at")
        ]
        if not self.as_json:
            for row in rows:
                if row["revoked_at"]:
                    state = f"revoked {row['revoked_at']:%Y-%m-%d}"
                elif row["expires_at"] <= now:
                    state = f"expired {row['expires_at']:%Y-%m-%d}"
                else:
                    state = f"until {row['expires_at']:%Y-%m-%d}"
                used = f"{row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"] else "never used"
                self.stdout.write(f"{row['prefix']}…  {row['scope']:<5}  {state:<18} {used:<17} {row['name']}")
        active = sum(1 for r in rows if not r["revoked_at"] and r["expires_at"] > now)
        self.report(f"{len(rows)} token(s) for “{user}”, {active} active.", {"user": user, "tokens": rows})
