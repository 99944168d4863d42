"""Keyed hashes of sensitive values (DESIGN §5): what search and matching keep instead of phones and emails.

HMAC-SHA256 under `CIM_SEARCH_KEY`, a key kept outside the database, of `kind:normalised value`: equal values
give equal hashes, so exact matching and search keep working once the values themselves are encrypted, and
nobody holding only the database can test a guess.
"""

import hmac
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.utils.module_loading import import_string


@lru_cache(maxsize=1)
def _key() -> bytes:
    # Read once: bulk paths hash millions of values, and each read of a setting costs as much as a hash.
    return settings.CIM_SEARCH_KEY.encode()


@receiver(setting_changed)
def _forget_key(*, setting, **kwargs):
    if setting == "CIM_SEARCH_KEY":
        _key.cache_clear()
        _derived_index.cache_clear()


def keyed_digest(kind: str, value: str) -> bytes:
    # hmac.digest is OpenSSL's one-shot HMAC: a fifth of the cost of an hmac.HMAC object, on bulk paths.
    return hmac.digest(_key(), f"{kind}:{value}".encode(), "sha256")


def blind_index(kind: str, value: str) -> str:
    """The 128-bit hex key of an exact value, e.g. `blind_index("phone", "+8613812345678")`."""
    return keyed_digest(kind, value)[:16].hex()


def blind_token(kind: str, value: str) -> str:
    """A shorter key (64 bits, hex) for search tokens, of which a customer has a dozen."""
    return keyed_digest(kind, value)[:8].hex()


class BlindIndexField(models.CharField):
    """The `blind_index` of another field of the row, kept in step on every save and bulk_create."""

    def __init__(self, *args, source: str, kind: str, **kwargs):
        self.source, self.kind = source, kind
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        # Always explicit: the default here (indexed) is not Field's, which deconstruct() would otherwise assume.
        return name, path, args, {**kwargs, "db_index": self.db_index, "source": self.source, "kind": self.kind}

    def pre_save(self, model_instance, add):
        # No value, no key: blank ID numbers must not all share one and look like duplicates of one another.
        source = getattr(model_instance, self.source)
        value = blind_index(self.kind, source) if source else ""
        setattr(model_instance, self.attname, value)
        return value


class DerivedIndexField(BlindIndexField):
    """The `blind_index` of a text derived from another field (a birthday's month and day, `derive` naming the
    function by its dotted path): matched exactly while neither the source nor the derived text is stored."""

    def __init__(self, *args, derive: str, **kwargs):
        self.derive = derive
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, {**kwargs, "derive": self.derive}

    def pre_save(self, model_instance, add):
        source = getattr(model_instance, self.source)
        value = _derived_index(self.derive, self.kind, source) if source else ""
        setattr(model_instance, self.attname, value)
        return value


@lru_cache(maxsize=100_000)
def _derived_index(derive: str, kind: str, source) -> str:
    # Few distinct sources (a birthday has one of ~30,000 dates) and a lunar date costs more than its hash.
    derived = import_string(derive)(source)
    return blind_index(kind, derived) if derived else ""
