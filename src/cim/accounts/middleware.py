"""Session lifetime (idle and absolute timeouts) and the rule that administrators set up MFA before anything else."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from cim.accounts.adapter import has_totp, mfa_required
from cim.core.api_errors import error_body

AUTH_AT = "cim_auth_at"  # when the user logged in (epoch seconds)
SEEN_AT = "cim_seen_at"  # their last request, to the minute
MFA_OK = "cim_mfa_ok"  # an administrator's TOTP authenticator was seen, so it is not looked up on every request
SEEN_RESOLUTION = 60  # seconds; the session is written at most once a minute to slide the idle timeout


def session_start(request, user) -> None:
    """Stamp a new login (called from the user_logged_in signal; Django has already rotated the session key)."""
    now = int(time.time())
    request.session[AUTH_AT] = now
    request.session[SEEN_AT] = now
    request.session[MFA_OK] = not mfa_required(user) or has_totp(user)


class SessionTimeoutMiddleware:
    """Log out after CIM_SESSION_IDLE_MINUTES without a request, or CIM_SESSION_MAX_HOURS after logging in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            auth_at = session.get(AUTH_AT)
            seen_at = session.get(SEEN_AT)
            if auth_at is None or seen_at is None:
                # A session from before this rule: it starts counting now.
                session[AUTH_AT] = session.get(AUTH_AT, now)
                session[SEEN_AT] = now
            elif (
                now - seen_at > settings.CIM_SESSION_IDLE_MINUTES * 60
                or now - auth_at > settings.CIM_SESSION_MAX_HOURS * 3600
            ):
                logout(request)  # flushes the session and deletes its row
                if not request.path.startswith("/api/"):
                    messages.info(request, _("Your session has expired. Please log in again."))
            elif now - seen_at >= SEEN_RESOLUTION:
                session[SEEN_AT] = now
        return self.get_response(request)


# Pages an administrator without MFA may still open: setting it up, logging out, changing a one-time password.
_MFA_SETUP_NAMES = (
    "mfa_activate_totp",
    "mfa_index",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "account_reauthenticate",
    "account_logout",
    "account_change_password",
    "set_language",
)


class AdministratorMfaMiddleware:
    """An administrator (or a role in CIM_MFA_REQUIRED_ROLES) without a TOTP authenticator sets one up first."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._allowed: tuple[str, ...] | None = None

    def allowed_paths(self) -> tuple[str, ...]:
        if self._allowed is None:
            self._allowed = tuple(reverse(name) for name in _MFA_SETUP_NAMES)
        return self._allowed

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not request.session.get(MFA_OK)
            and mfa_required(user)
            and not user.must_change_password  # the one-time password is replaced first
            and not request.path.startswith(self.allowed_paths())
        ):
            if has_totp(user):
                request.session[MFA_OK] = True
            elif request.path.startswith("/api/"):
                body = error_body("mfa_required", _("Set up two-factor authentication on the web page first."))
                return JsonResponse(body, status=403, json_dumps_params={"ensure_ascii": False})
            else:
                messages.warning(
                    request,
                    _(
                        "Your role must use two-factor authentication. Scan the code with an authenticator "
                        "app and enter the code it shows; then keep the recovery codes somewhere safe."
                    ),
                )
                return redirect("mfa_activate_totp")
        return self.get_response(request)
