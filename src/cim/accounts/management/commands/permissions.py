from cim.accounts.roles import FIELD_ACCESS, ROLE_PERMISSIONS, ROLE_SCOPE, Perm, Role, field_access
from cim.core.commands import ReportingCommand
from cim.privacy.masking import field_key
from cim.privacy.registry import sensitive_fields


class Command(ReportingCommand):
    help = "Print what each role may do: functions, record scope and access to each sensitive field."

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=Role.values, help="only this role")

    def handle(self, *args, role: str | None, **options):
        roles = [role] if role else list(Role.values)
        fields = {field_key(f): f.mask for f in sensitive_fields()}
        data = {
            name: {
                "scope": str(ROLE_SCOPE[name]),
                "permissions": sorted(str(p) for p in ROLE_PERMISSIONS[name]),
                "fields": {key: str(field_access(name, kind)) for key, kind in fields.items()},
            }
            for name in roles
            if name in FIELD_ACCESS
        }
        if not self.as_json:
            for name, row in data.items():
                self.stdout.write(f"{name}: scope={row['scope']}")
                self.stdout.write("  permissions: " + ", ".join(row["permissions"]))
                self.stdout.write("  fields: " + ", ".join(f"{k}={v}" for k, v in row["fields"].items()))
        self.report(f"{len(data)} roles, {len(Perm)} permissions, {len(fields)} sensitive fields.", data)
