"""CIM's production checks of backups and basic settings, run by `cim check --deploy` (tag "cim")."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.checks.security.base import _check_secret_key
from django.db import DatabaseError
from django.utils.translation import gettext as _

from cim.backups.archive import backup_key_present


@register("cim", deploy=True)
def check_settings(app_configs=None, **kwargs):
    errors = []
    if settings.DEBUG:
        errors.append(Error(_("DEBUG is on."), hint=_("Unset CIM_DEBUG in production."), id="cim.E001"))
    hosts = [h for h in settings.ALLOWED_HOSTS if h]
    if not hosts:
        errors.append(Error(_("No allowed host is set."), hint=_("Set CIM_ALLOWED_HOSTS."), id="cim.E002"))
    elif "*" in hosts:
        errors.append(
            Warning(
                _("Every host name is allowed ('*')."),
                hint=_("List the real host names in CIM_ALLOWED_HOSTS."),
                id="cim.W002",
            )
        )
    if not _check_secret_key(getattr(settings, "SECRET_KEY", None)):
        errors.append(
            Error(
                _("The secret key is short, simple or Django's default."),
                hint=_("Set CIM_SECRET_KEY to a long random value, or remove it to have one generated."),
                id="cim.E003",
            )
        )
    return errors


@register("cim", deploy=True)
def check_backups(app_configs=None, **kwargs):
    from cim.backups.selectors import backup_health

    errors = []
    if not backup_key_present():
        errors.append(
            Error(
                _("No backup key: backups cannot be made or read."),
                hint=_(
                    "Set CIM_BACKUP_KEY, or run `cim backup create` once to generate one into the data directory; "
                    "keep a copy of it away from the backups."
                ),
                id="cim.E010",
            )
        )
    try:
        health = backup_health()
    except DatabaseError:
        return [*errors, Error(_("The backup catalog cannot be read."), hint=_("Run `cim migrate`."), id="cim.E011")]
    if health.last is None:
        errors.append(
            Error(
                _("No backup has been made."),
                hint=_("Run `cim backup create` and keep `cim worker` running for the daily backup."),
                id="cim.E012",
            )
        )
    elif health.stale:
        hours = int(health.age.total_seconds() // 3600)
        errors.append(
            Error(
                _("The last backup is %(hours)s hours old (more than %(max)s).")
                % {"hours": hours, "max": health.max_age_hours},
                hint=_("Check that `cim worker` runs; run `cim backup create`."),
                id="cim.E013",
            )
        )
    elif health.last_verified is None:
        errors.append(
            Warning(_("No backup has been verified."), hint=_("Run `cim backup verify --latest`."), id="cim.W014")
        )
    return errors
