"""Secrets that must exist before Django starts: from CIM_* variables, else generated once into the data dir."""

import os
import secrets
from pathlib import Path


def load_or_create(data_dir: Path, env_name: str, file_name: str) -> str:
    """Return the secret from the environment, or from `data_dir/file_name`, creating it (mode 0600) if absent."""
    if value := os.environ.get(env_name):
        return value
    path = data_dir / file_name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
