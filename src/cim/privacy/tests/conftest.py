import pytest


@pytest.fixture(autouse=True)
def _privacy_files(settings, tmp_path):
    """Tombstones journal and uploads in a temporary directory, never in var/."""
    settings.CIM_TOMBSTONE_FILE = tmp_path / "tombstones.jsonl"
    settings.MEDIA_ROOT = tmp_path / "uploads"
