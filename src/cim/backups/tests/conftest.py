import pytest


@pytest.fixture
def backup_settings(settings, tmp_path, monkeypatch):
    """Backups, uploads and the generated key in a folder of the test's own."""
    monkeypatch.delenv("CIM_BACKUP_KEY", raising=False)
    settings.DATA_DIR = tmp_path
    settings.CIM_BACKUP_DIR = tmp_path / "backups"
    settings.MEDIA_ROOT = tmp_path / "uploads"
    return settings
