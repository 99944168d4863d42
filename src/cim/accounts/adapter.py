"""How django-allauth behaves in CIM: accounts come from administrators, lockout counts per username and address."""

import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cim.accounts.roles import Role


def mfa_required(user) -> bool:
    """Whether the user must use a second factor: administrators always, others if in CIM_MFA_REQUIRED_ROLES."""
    return user.is_authenticated and (
        user.is_superuser or user.role == Role.ADMINISTRATOR or user.role in settings.CIM_MFA_REQUIRED_ROLES
    )


def has_totp(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class CimAccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": _(
            "Too many failed log-ins for this username from your address. Wait %(minutes)s minutes and try again, "
            "or ask an administrator to reset your password."
        ),
    }

    def validation_error(self, code, *args):
        if code == "too_many_login_attempts":
            from django import forms

            return forms.ValidationError(
                self.error_messages[code], code=code, params={"minutes": settings.CIM_LOGIN_LOCKOUT_MINUTES}
            )
        return super().validation_error(code, *args)

    def is_open_for_signup(self, request) -> bool:
        # Administrators create accounts (`cim createuser`, the admin); there is no self-service sign-up.
        return False

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # Lock out (username, address) pairs: a stranger elsewhere cannot lock a colleague out by guessing.
        login = credentials.get("username", "").lower()
        return f"{login}@{self.get_client_ip(request)}"

    def get_client_ip(self, request) -> str:
        from cim.ingest.views_forms import client_ip

        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine the client address")
        return ip

    def get_login_redirect_url(self, request) -> str:
        # A one-time password is changed before anything else; then administrators set up MFA (middleware).
        if getattr(request.user, "must_change_password", False):
            return reverse("account_change_password")
        return super().get_login_redirect_url(request)

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        # A login in the last ACCOUNT_REAUTHENTICATION_TIMEOUT seconds counts as re-entering the password, so an
        # administrator sent to set up MFA straight after logging in is not asked for the password a second time.
        from allauth.core import context

        from cim.accounts.middleware import AUTH_AT

        request = context.request
        logged_in_at = request.session.get(AUTH_AT) if request is not None else None
        if logged_in_at and time.time() - logged_in_at < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT:
            return False
        return super().is_reauthentication_required(app=app, **kwargs)

    def get_password_change_redirect_url(self, request) -> str:
        return reverse(settings.LOGIN_REDIRECT_URL)


class CimMfaAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        # An administrator's TOTP is mandatory: it can be replaced (recovery codes, admin reset) but not switched off.
        if authenticator.type == Authenticator.Type.TOTP and mfa_required(authenticator.user):
            return False
        return super().can_delete_authenticator(authenticator)
