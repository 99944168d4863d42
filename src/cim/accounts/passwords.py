"""Password rules Django does not ship: an upper bound, so passphrases are welcome but hashing cannot be abused."""

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext


class MaximumLengthValidator:
    """At most `max_length` characters (ASVS 5.0 V6.2.9 asks that at least 64 be allowed; CIM allows 128)."""

    def __init__(self, max_length: int = 128):
        self.max_length = max_length

    def validate(self, password: str, user=None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    self.max_length,
                ),
                code="password_too_long",
                params={"max_length": self.max_length},
            )

    def get_help_text(self) -> str:
        return ngettext(
            "Your password can be a long passphrase of up to %(max_length)d character.",
            "Your password can be a long passphrase of up to %(max_length)d characters.",
            self.max_length,
        ) % {"max_length": self.max_length}
