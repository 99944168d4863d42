"""Keyed hashes of sensitive values (DESIGN §5): what search and matching keep instead of phones and emails.

HMAC-SHA256 under `CIM_SEARCH_KEY`, a key kept outside the database, of `kind:normalised value`: equal values
give equal hashes, so exact matching and search keep working once the values themselves are encrypted, and
nobody holding only the database can test a guess.
"""

import hashlib
import hmac
from base64 import b32encode
from functools import lru_cache

from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _keyed(secret: str) -> "hmac.HMAC":
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def keyed_digest(kind: str, value: str) -> bytes:
    # Copying a keyed state skips hashing the key again: a third of the cost on bulk paths.
    mac = _keyed(settings.CIM_SEARCH_KEY).copy()
    mac.update(f"{kind}:{value}".encode())
    return mac.digest()


def blind_index(kind: str, value: str) -> str:
    """The 128-bit hex key of an exact value, e.g. `blind_index("phone", "+8613812345678")`."""
    return keyed_digest(kind, value).hex()[:32]


def blind_token(kind: str, value: str) -> str:
    """A shorter key (80 bits, base32) for search tokens, of which a customer has a dozen."""
    return b32encode(keyed_digest(kind, value)[:10]).decode().lower()


class BlindIndexField(models.CharField):
    """The `blind_index` of another field of the row, kept in step on every save and bulk_create."""

    def __init__(self, *args, source: str, kind: str, **kwargs):
        self.source, self.kind = source, kind
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "source": self.source, "kind": self.kind}

    def pre_save(self, model_instance, add):
        value = blind_index(self.kind, getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value
