"""Browser fixture for the report tests: Debian's chromium driven by Playwright (never `playwright install`).

Skips when chromium or playwright is missing, unless CI=true: then it fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def _missing(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {why}: .ci/run installs Debian chromium and the test extras install playwright")
    pytest.skip(why)


@pytest.fixture(scope="module")  # not session: an open sync_playwright holds this thread's asyncio loop, and a
def browser() -> Iterator[object]:  # later module's own sync_playwright in the same xdist worker would be refused
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()
