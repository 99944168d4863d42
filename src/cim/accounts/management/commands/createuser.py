from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from cim.accounts.models import Team, User
from cim.accounts.roles import Role
from cim.accounts.services import user_create
from cim.core.commands import ReportingCommand


class Command(ReportingCommand):
    help = "Create a user with a role. Without --password a one-time password is generated and printed."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help="one of: " + ", ".join(Role.values))
        parser.add_argument("--password", help="initial password (default: a generated one-time password)")
        parser.add_argument("--team", help="team name; created when it does not exist")
        parser.add_argument("--email", default="")

    def handle(self, *args, username: str, role: str, password: str | None, team: str | None, email: str, **options):
        if role not in Role.values:
            raise self.fail(f"Unknown role “{role}”; choose one of: {', '.join(Role.values)}.")
        if User.objects.filter(username=username).exists():
            raise self.fail(f"A user named “{username}” already exists.")
        if password:
            try:
                validate_password(password, User(username=username, email=email))
            except ValidationError as error:
                raise self.fail("The password is too weak: " + " ".join(error.messages)) from None
        team_obj = Team.objects.get_or_create(name=team)[0] if team else None
        try:
            user, one_time = user_create(username=username, role=role, password=password, team=team_obj, email=email)
        except ValidationError as error:
            raise self.fail(" ".join(error.messages)) from None
        summary = f"Created {role} “{user.username}”" + (f" in team “{team_obj.name}”" if team_obj else "") + "."
        if one_time:
            summary += f" One-time password: {one_time} (to be changed at first sign-in)"
        self.report(
            summary,
            {
                "username": user.username,
                "role": role,
                "team": team_obj.name if team_obj else None,
                "email": email,
                "password": one_time,
            },
        )
