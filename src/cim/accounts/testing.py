"""Helpers for tests and the browser journeys: a real TOTP authenticator and the codes an app would show."""

import time

from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

from cim.accounts.models import User


def totp_activate(user: User) -> str:
    """Give `user` a TOTP authenticator (and recovery codes) as allauth's setup page would; returns the secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def totp_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows for `secret` now, computed with allauth's own HOTP function."""
    from allauth.mfa import app_settings

    return format_hotp_value(hotp_value(secret, int(at if at is not None else time.time()) // app_settings.TOTP_PERIOD))


def totp_secret(user: User) -> str:
    from allauth.mfa.utils import decrypt

    return decrypt(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"])


def browser_log_in(page, base_url: str, username: str, password: str = "Correct-Horse-42") -> None:
    """Log in through the page like a person: password, then, when the user has an authenticator, its code."""
    # Generous timeouts: the first requests of a fresh live server import and compile a lot on a busy machine.
    page.goto(f"{base_url}/login/", timeout=60_000)
    page.fill("#id_login", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url(lambda url: not url.rstrip("/").endswith("/login"), timeout=60_000)
    if "/2fa/authenticate/" in page.url:
        from allauth.mfa import app_settings

        # A code in its last seconds can reach a busy server after its period ended, and be refused.
        left = app_settings.TOTP_PERIOD - time.time() % app_settings.TOTP_PERIOD
        if left < 10:
            time.sleep(left)
        page.fill("#id_code", totp_code(totp_secret(User.objects.get(username=username))))
        page.press("#id_code", "Enter")
    page.wait_for_url(f"{base_url}/", timeout=60_000)
