"""Fixtures of the browser tests (helpers in tests/browsertesting.py)."""
import pytest
from browsertesting import find_chromium


@pytest.fixture
def chromium() -> str:
    """Path of the chromium binary; skips (fails in CI) when it or Playwright is missing."""
    return find_chromium()


@pytest.fixture
def chromium_with_viewer() -> str:
    """As ``chromium``, and the NiiVue module must have been built into frontend/static/vendor."""
    return find_chromium(need_viewer=True)
