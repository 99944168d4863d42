import pytest


@pytest.fixture(autouse=True)
def _uploads(settings, tmp_path):
    """Uploaded and imported files go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "uploads"
