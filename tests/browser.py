"""What the browser tests share: Debian's Chromium, driven by Playwright (from pip); no browser
is ever downloaded. The `browser_page` fixture is in tests/conftest.py."""

import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
NEEDS_CHROMIUM = [
    pytest.mark.skipif(
        not CHROMIUM.exists() and not shutil.which("chromium"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
    pytest.mark.timeout(120),
]
