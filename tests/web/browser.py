"""Debian's Chromium for the browser tests (never a downloaded browser), driven by plain
`sync_playwright()`. Importing this module skips the importing test module when
playwright or `/usr/bin/chromium` is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]

playwright_api = pytest.importorskip("playwright.sync_api")
if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium package is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()
