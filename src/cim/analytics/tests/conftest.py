import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Analyses are cached for minutes; each test computes its own."""
    cache.clear()
    yield
    cache.clear()
