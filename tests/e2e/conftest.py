import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Worker  # noqa: E402


@pytest.fixture
def worker(tmp_path):
    """A started worker; stopped (and its log shown on failure) after the test."""
    w = Worker(tmp_path)
    w.start()
    yield w
    try:
        w.stop()
    finally:
        print(f"--- worker log ({w.log_path}) ---\n{w.log()[-20000:]}")
