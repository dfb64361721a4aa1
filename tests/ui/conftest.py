"""Browser tests of the web UI: the real service on loopback (tests/api/api_service.py: uvicorn,
extractive backend, dev auth, a real FHIR server for write-back, synthetic charts) driven by
Playwright with Debian's Chromium. No browser download: ``executable_path`` points at the system
Chromium, and the test is skipped with a clear message where there is none."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from api_service import service  # noqa: E402,F401  (the session fixture, reused as it is)

pytest.importorskip("playwright", reason="pip install playwright (no browser download needed: "
                    "the tests use the system Chromium)")

from ui_flows import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LAPTOP  # noqa: E402


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium "
                    "(or set CHARTDRAFT_CHROMIUM)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test (its own session storage, so its own sign-in)."""
    ctx = browser.new_context(viewport=LAPTOP, locale="en-US")
    ctx.set_default_timeout(20_000)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):  # a crashed page has nothing left to show
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
        ctx.close()
