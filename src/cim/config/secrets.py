"""Secrets that must exist before Django starts: from CIM_* variables, else generated once into the data dir."""

import base64
import datetime
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def load_or_create(
    data_dir: Path, env_name: str, file_name: str, generate: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """Return the secret from the environment, or from `data_dir/file_name`, creating it (mode 0600) if absent."""
    if value := os.environ.get(env_name):
        return value
    path = data_dir / file_name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate())
    return path.read_text().strip()


def key_generate() -> str:
    """A new encryption key line, `kid:base64key`: 256 random bits, an id from today's date and a random suffix."""
    kid = f"k{datetime.date.today():%Y%m%d}{secrets.token_hex(2)}"
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
