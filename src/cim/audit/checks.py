"""`cim check --deploy`: the audit chain's key must be set, long enough, and kept away from the database."""

import os

from django.conf import settings
from django.core.checks import Warning, register

MIN_KEY_LENGTH = 32
# Keys copied from documentation or examples: anyone could forge the chain with them.
KNOWN_KEYS = frozenset({"", "changeme", "change-me", "secret", "audit", "audit-key", "cim-audit-key"})


@register("cim", deploy=True)
def audit_key_check(app_configs, **kwargs):
    key = getattr(settings, "CIM_AUDIT_KEY", "") or ""
    hint = (
        "Set CIM_AUDIT_KEY to a random value of at least 32 characters (e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(48))'`), kept in the service manager's secrets, not in the data directory. "
        "Changing it makes the existing chain fail verification: see docs/audit.md."
    )
    if key.strip().lower() in KNOWN_KEYS:
        return [Warning("The audit log's key is missing or a well-known default.", hint=hint, id="cim.audit.W001")]
    if len(key) < MIN_KEY_LENGTH:
        return [Warning("The audit log's key is shorter than 32 characters.", hint=hint, id="cim.audit.W002")]
    if not os.environ.get("CIM_AUDIT_KEY"):
        return [
            Warning(
                "The audit log's key was generated into the data directory, next to the database: whoever can "
                "change the database there can also read the key and rewrite the chain.",
                hint=hint,
                id="cim.audit.W003",
            )
        ]
    return []
