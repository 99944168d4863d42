"""`cim check --deploy`: the upgrade checks an operator runs after deploying (docs/observability.md)."""

from django.core.checks import Warning, register
from django.db import DatabaseError
from django.utils import timezone

from cim.core.models import WorkerHeartbeat
from cim.core.schedule import worker_silence
from cim.core.version import code_version, pending_migrations


@register("cim", deploy=True)
def upgrade_checks(app_configs, **kwargs):
    try:
        pending = pending_migrations()
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
