"""Fixtures shared by the test files, and how the tests share two workers.

``make test-py`` runs pytest on two workers (pytest-xdist, ``--dist loadgroup``).
Each test file is one group, run by one worker, so its module fixtures (trained
models, built wheels, servers) are made once; the files in ``INDEPENDENT_TESTS``
share no fixture and go test by test to whichever worker is free. Files with slow
tests start first, so that the long runs overlap and short ones fill in after.
Every worker has its own Chromium, its servers on free ports and its own
temporary folders; screenshots in ``tests/artifacts`` have one name per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import ARTIFACTS, launch_chromium

# Each of these tests sets up everything it needs (a notebook in a fresh kernel).
INDEPENDENT_TESTS = {"test_notebooks.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name not in INDEPENDENT_TESTS and not item.get_closest_marker("xdist_group"):
            item.add_marker(
                pytest.mark.xdist_group(item.path.relative_to(config.rootpath).as_posix())
            )
    # Stable sort by file: a file's tests stay together and in their order.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium per worker (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The gitignored folder for screenshots and other test output."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
