"""The backups page (administrators): catalog, last good backup, a warning when the last one is old, and buttons
that queue a backup or a verification for the worker. Restore is CLI-only: the page shows the command."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cim.accounts.roles import Perm
from cim.backups.models import Backup
from cim.backups.selectors import backup_health, backup_list
from cim.backups.services import backup_dir
from cim.backups.tasks import backup_create_run, backup_verify_run
from cim.core.views import page


@page(perm=Perm.BACKUP_MANAGE)
def backup_list_view(request):
    context = {
        "nav": "backups",
        "backups": list(backup_list()[:100]),
        "health": backup_health(),
        "folder": backup_dir(),
    }
    return render(request, "backups/list.html", context)


@require_POST
@page(perm=Perm.BACKUP_MANAGE)
def backup_create_view(request):
    backup_create_run.enqueue(user_id=request.user.pk, verify=True)
    messages.success(request, _("The backup runs in the background and is verified afterwards; it appears here then."))
    return redirect("backups:list")


@require_POST
@page(perm=Perm.BACKUP_MANAGE)
def backup_verify_view(request, pk: int):
    backup = get_object_or_404(Backup, pk=pk)
    backup_verify_run.enqueue(backup_id=backup.pk, user_id=request.user.pk)
    messages.success(request, _("Backup %(name)s is being verified in the background.") % {"name": backup.file_name})
    return redirect("backups:list")
