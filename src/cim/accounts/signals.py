"""What happens around logging in: session stamps, MFA changes in the audit trail, and clearing a pending
one-time password. Logins, logouts and failed logins are recorded by cim.audit.signals."""

from allauth.account.signals import password_changed, password_reset
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from cim.accounts.middleware import MFA_OK, session_start
from cim.accounts.services import user_password_changed
from cim.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="cim.accounts.logged_in")
def _logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_start(request, user)


@receiver(password_changed, dispatch_uid="cim.accounts.password_changed")
@receiver(password_reset, dispatch_uid="cim.accounts.password_reset")
def _password_changed(sender, request, user, **kwargs):
    user_password_changed(user=user)


@receiver(authenticator_added, dispatch_uid="cim.accounts.mfa_added")
@receiver(authenticator_removed, dispatch_uid="cim.accounts.mfa_removed")
@receiver(authenticator_reset, dispatch_uid="cim.accounts.mfa_reset")
def _authenticator_changed(sender, request, user, authenticator, signal, **kwargs):
    action = {
        authenticator_added: "mfa.authenticator_add",
        authenticator_removed: "mfa.authenticator_remove",
        authenticator_reset: "mfa.authenticator_reset",
    }[signal]
    audit_record(actor=user, action=action, target=authenticator, fields=["type"], note=authenticator.type)
    if signal is authenticator_added and request is not None and hasattr(request, "session"):
        request.session[MFA_OK] = True
