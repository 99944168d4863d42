"""`cim check --deploy`: the upgrade checks an operator runs after deploying (docs/observability.md), and the
encryption keys of the sensitive fields (docs/encryption.md)."""

import stat

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils import timezone

from cim.core import crypto
from cim.core.models import WorkerHeartbeat
from cim.core.partitions import partitions_not_ready
from cim.core.schedule import worker_silence
from cim.core.version import code_version, pending_migrations


@register("cim", deploy=True)
def upgrade_checks(app_configs, **kwargs):
    try:
        pending = pending_migrations()
        not_ready = partitions_not_ready()
        workers = list(WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - worker_silence()))
    except DatabaseError:
        return [Warning("The database cannot be read, so migrations and workers were not checked.", id="cim.W101")]
    problems = []
    if pending:
        problems.append(
            Warning(
                f"{len(pending)} migration(s) not applied: {', '.join(pending[:5])}.",
                hint="Run `cim migrate` before starting the new version's web and worker processes.",
                id="cim.W102",
            )
        )
    if not_ready:
        problems.append(
            Warning(
                f"Next month's partition is missing on {', '.join(not_ready)}: its rows would go to the default one.",
                hint="Run `cim worker`: it creates the months ahead (docs/deploy.md, Monthly partitions).",
                id="cim.W105",
            )
        )
    mine = code_version()
    for worker in workers:
        if worker.version != mine:
            problems.append(
                Warning(
                    f"Worker {worker.worker} runs version {worker.version or '?'}, this process {mine}.",
                    hint="Restart the workers after an upgrade so that web and workers run the same code.",
                    id="cim.W104",
                )
            )
    return problems


@register("cim", deploy=True)
def encryption_keys_check(app_configs=None, **kwargs) -> list[Error]:
    """Keys present and well-formed, and a key file that only its owner can read."""
    errors = []
    try:
        crypto.keys_parse(getattr(settings, "CIM_ENCRYPTION_KEYS", "") or "")
    except ImproperlyConfigured as error:
        errors.append(
            Error(
                f"Encryption keys missing or malformed: {error}",
                hint="Set CIM_ENCRYPTION_KEYS to `kid:base64key` entries (`cim keys generate` prints one).",
                id="cim.E101",
            )
        )
    path = getattr(settings, "CIM_ENCRYPTION_KEY_FILE", None)
    if path is not None and path.exists() and path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH):
        errors.append(
            Error(
                f"The encryption key file {path} can be read by every user of this machine.",
                hint=f"chmod 600 {path}",
                id="cim.E102",
            )
        )
    return errors
