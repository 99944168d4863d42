"""`cim check --deploy`: administrators without MFA, session or cookie settings that weaken logins, and a breached
passwords file that cannot be used."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from cim.accounts.passwords import pwned_file_problem


@register("cim", deploy=True)
def check_administrators_mfa(app_configs=None, **kwargs):
    from allauth.mfa.models import Authenticator
    from django.db import DatabaseError
    from django.db.models import Q

    from cim.accounts.models import User
    from cim.accounts.roles import Role

    try:
        missing = list(
            User.objects.filter(
                Q(role=Role.ADMINISTRATOR) | Q(role__in=settings.CIM_MFA_REQUIRED_ROLES) | Q(is_superuser=True),
                is_active=True,
            )
            .exclude(pk__in=Authenticator.objects.filter(type=Authenticator.Type.TOTP).values("user_id"))
            .order_by("username")
            .values_list("username", flat=True)
        )
    except DatabaseError:
        return []  # not migrated yet; `cim check` reports the database itself
    if not missing:
        return []
    return [
        Warning(
            f"{len(missing)} active user(s) must use two-factor authentication but have not set it up: "
            f"{', '.join(missing[:10])}.",
            hint="They are sent to set up an authenticator app at their next login; until then a stolen password "
            "is enough to take over the account.",
            id="cim.accounts.W001",
        )
    ]


@register("cim", deploy=True)
def check_session_settings(app_configs=None, **kwargs):
    warnings = []
    if not settings.SESSION_COOKIE_SECURE or not settings.CSRF_COOKIE_SECURE:
        warnings.append(
            Warning(
                "Session and CSRF cookies are sent over plain HTTP.",
                hint="Serve CIM over HTTPS and set CIM_SECURE_COOKIES=1.",
                id="cim.accounts.W002",
            )
        )
    if not settings.SESSION_COOKIE_HTTPONLY:
        warnings.append(
            Warning(
                "Scripts can read the session cookie.", hint="SESSION_COOKIE_HTTPONLY = True", id="cim.accounts.W003"
            )
        )
    if settings.SESSION_COOKIE_SAMESITE not in ("Lax", "Strict"):
        warnings.append(
            Warning(
                "The session cookie is sent on cross-site requests.",
                hint="SESSION_COOKIE_SAMESITE = 'Lax'",
                id="cim.accounts.W004",
            )
        )
    if settings.CIM_SESSION_IDLE_MINUTES > 60:
        warnings.append(
            Warning(
                f"Sessions stay open for {settings.CIM_SESSION_IDLE_MINUTES} idle minutes.",
                hint="ASVS 5.0 V7.3.1: end idle sessions; CIM_SESSION_IDLE_MINUTES=30 is the default.",
                id="cim.accounts.W005",
            )
        )
    if settings.CIM_SESSION_MAX_HOURS > 24:
        warnings.append(
            Warning(
                f"A login lasts up to {settings.CIM_SESSION_MAX_HOURS} hours.",
                hint="ASVS 5.0 V7.3.2: re-authenticate at least daily; CIM_SESSION_MAX_HOURS=12 is the default.",
                id="cim.accounts.W006",
            )
        )
    if settings.CIM_PASSWORD_MIN_LENGTH < 8:
        warnings.append(
            Warning(
                f"Passwords may be as short as {settings.CIM_PASSWORD_MIN_LENGTH} characters.",
                hint="ASVS 5.0 V6.2.1 requires at least 8; CIM_PASSWORD_MIN_LENGTH=15 is the default.",
                id="cim.accounts.W007",
            )
        )
    return warnings


@register("cim", deploy=True)
def check_pwned_passwords_file(app_configs=None, **kwargs):
    path = settings.CIM_PWNED_PASSWORDS_FILE
    if not path or (problem := pwned_file_problem(path)) is None:
        return []
    return [
        Error(
            f"CIM_PWNED_PASSWORDS_FILE: {problem} New passwords are not checked against it.",
            hint="Point it at the file `haveibeenpwned-downloader pwnedpasswords` writes (SHA-1, one file); see "
            "docs/security.md#breached-passwords.",
            id="cim.accounts.E001",
        )
    ]
