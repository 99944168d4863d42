"""Production checks of the core (`cim check --deploy`): the encryption keys of the sensitive fields."""

import stat

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from cim.core import crypto


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
