"""Encryption at rest of sensitive fields (DESIGN §5): AES-256-GCM under keys kept outside the database.

A stored value is `v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`, with a random 96-bit nonce and the column
(`table.column`) as associated data, so a value copied into another column does not decrypt. Keys come from
`CIM_ENCRYPTION_KEYS` (`kid:base64key,kid2:base64key`, the first one encrypts, all of them decrypt) or from the
`encryption_keys` file generated into the data directory on first run. `cim keys rotate` re-encrypts every row
under the first key; `cim keys status` counts rows per key id.

Values stay plain in Python: `from_db_value` decrypts, `get_db_prep_value` encrypts. Equal values encrypt to
different texts, so the database can test only emptiness: exact matches go through blind indexes
(cim.core.blind_index), and any other lookup on an encrypted field fails loudly instead of matching nothing.
Empty values are stored empty (a blank street is not a secret), which keeps `is empty` conditions working.
"""

import base64
import binascii
import datetime
import json
import os
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.dispatch import receiver

from cim.config.secrets import key_generate  # noqa: F401  (re-exported: `cim keys generate`)

PREFIX = "v1"
NONCE_BYTES = 12
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class DecryptionError(Exception):
    """A stored value that no configured key opens: a missing key, or a value changed behind CIM's back."""


def keys_parse(text: str) -> dict[str, bytes]:
    """`kid:base64key` entries separated by commas or lines, first the current one; raises ImproperlyConfigured."""
    keys: dict[str, bytes] = {}
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry or entry.startswith("#"):
            continue
        kid, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID.match(kid):
            raise ImproperlyConfigured(f"Encryption key entry {len(keys) + 1}: expected `kid:base64key`.")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"Encryption key {kid}: not base64.") from None
        if len(key) != 32:
            raise ImproperlyConfigured(f"Encryption key {kid}: {len(key)} bytes, AES-256 needs 32.")
        if kid in keys:
            raise ImproperlyConfigured(f"Encryption key id {kid} appears twice.")
        keys[kid] = key
    if not keys:
        raise ImproperlyConfigured("No encryption key: set CIM_ENCRYPTION_KEYS or keep the data dir's key file.")
    return keys


class Keyring:
    """The parsed keys with one AESGCM object per key id: building one costs more than decrypting a value."""

    def __init__(self, text: str):
        self.keys = keys_parse(text)
        self.current = next(iter(self.keys))
        self.ciphers = {kid: AESGCM(key) for kid, key in self.keys.items()}
        self.head = f"{PREFIX}:{self.current}:"
        self._current = self.ciphers[self.current]

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext.encode(), aad)
        return self.head + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, aad: bytes) -> str:
        _prefix, kid, body = stored.split(":", 2)
        cipher = self.ciphers.get(kid)
        if cipher is None:
            raise DecryptionError(f"no key with id {kid}: add it to CIM_ENCRYPTION_KEYS")
        raw = base64.b64decode(body)
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except InvalidTag:
            raise DecryptionError(f"a value under key {kid} does not authenticate") from None


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    return Keyring(settings.CIM_ENCRYPTION_KEYS)


@receiver(setting_changed)
def _forget_keys(*, setting, **kwargs):
    if setting == "CIM_ENCRYPTION_KEYS":
        keyring.cache_clear()


def is_encrypted(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX + ":")


def key_id_of(value: str) -> str:
    return value.split(":", 2)[1]


def encrypt(plaintext: str, aad: bytes) -> str:
    return keyring().encrypt(plaintext, aad) if plaintext else ""


def decrypt(stored: str, aad: bytes) -> str:
    """The plaintext of a stored value; a value not (yet) encrypted is returned as it is (see the migration)."""
    return keyring().decrypt(stored, aad) if is_encrypted(stored) else stored


class _EmptyOnlyExact(Exact):
    """`= ''` (is blank, `{}` for JSON) still works; `= 'a value'` would silently match nothing, so it is refused."""

    def get_prep_lookup(self):
        if self.rhs not in ("", None) and self.rhs != {}:
            target = getattr(self.lhs, "target", None)
            raise TypeError(f"{target} is encrypted: match it through its blind index, not by value.")
        return super().get_prep_lookup()


class EncryptedMixin:
    """What the encrypted fields share: storage as text, encryption on the way in, decryption on the way out."""

    encrypted = True
    ALLOWED_LOOKUPS = {"isnull": IsNull, "exact": _EmptyOnlyExact}

    def get_internal_type(self):
        return "TextField"

    def aad(self) -> bytes:
        return f"{self.model._meta.db_table}.{self.column}".encode()

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return None
        return self.to_python(decrypt(value, self.aad()))

    def plain_text(self, value) -> str:
        return "" if value is None else str(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        value = self.to_python(value)
        if value is None:
            return None
        return encrypt(self.plain_text(value), self.aad())

    def get_lookup(self, lookup_name):
        return self.ALLOWED_LOOKUPS.get(lookup_name)

    def get_transform(self, lookup_name):
        return None


class EncryptedTextField(EncryptedMixin, models.CharField):
    """A CharField stored encrypted; `max_length`, if given, limits the plaintext (the column is text)."""

    def _check_max_length_attribute(self, **kwargs):
        return [] if self.max_length is None else super()._check_max_length_attribute(**kwargs)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None if self.null else ""
        return encrypt(str(value), self.aad())

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value, self.aad())


class EncryptedDateField(EncryptedMixin, models.DateField):
    """A DateField stored encrypted as its ISO text: a birthday. Date lookups (`__month`, `__gt`) cannot work on
    it; see docs/encryption.md for the derived columns that answer them."""

    def plain_text(self, value) -> str:
        return value.isoformat()


class EncryptedJSONField(EncryptedMixin, models.JSONField):
    """A JSONField stored as encrypted JSON text: snapshots and submissions that hold sensitive values and are only
    read whole, in Python (no JSON lookups in the database)."""

    def plain_text(self, value) -> str:
        return json.dumps(value, cls=self.encoder or DjangoJSONEncoder, ensure_ascii=False)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        # An empty object is stored empty, like empty text: "nothing was sent" stays a query (retention).
        return "" if value == {} else encrypt(self.plain_text(value), self.aad())

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return {} if value == "" else json.loads(decrypt(value, self.aad()), cls=self.decoder)


class DatePartField(models.PositiveSmallIntegerField):
    """The year or month of an encrypted date of the same row, kept in step on every save and bulk_create, so
    "born in March" and age ranges stay queries while the day stays encrypted (docs/encryption.md)."""

    def __init__(self, *args, source: str, part: str, **kwargs):
        self.source, self.part = source, part
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "source": self.source, "part": self.part}

    def pre_save(self, model_instance, add):
        value = date_part(getattr(model_instance, self.source), self.part)
        setattr(model_instance, self.attname, value)
        return value


def date_part(value, part: str) -> int | None:
    if isinstance(value, str) and value:
        value = datetime.date.fromisoformat(value)
    return getattr(value, part) if value else None


def encrypted_fields() -> list[models.Field]:
    """Every encrypted concrete field of every installed model: what rotation and status walk over."""
    from django.apps import apps

    return [
        field
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if getattr(field, "encrypted", False)
    ]
