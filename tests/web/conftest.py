"""Browser fixtures: headless Debian Chromium driven by Playwright, a real hubbub server.

No Chromium (or no Playwright) skips these tests with the reason — except under
``CI=true``, where that is a failure. Playwright never downloads a browser here:
it drives ``/usr/bin/chromium`` (``make test`` installs it with apt).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from support import ScriptedProvider, ServerThread, env_flag, register_scripted, start_server

CHROMIUM = os.environ.get("HUBBUB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Exact, slow text for the stop and resume tests (they compare text exactly); 40 words, 0.12 s apart.
SLOW_REPLY = " ".join(f"word{i:02d}" for i in range(40))


def _unavailable(reason: str) -> None:
    if env_flag("CI"):
        pytest.fail(f"{reason}, and CI=true: the browser tests must run in CI", pytrace=False)
    pytest.skip(f"{reason}; run `make test` (as root it installs Debian's chromium) to run the browser tests")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("web"), max_tokens_cap=60)
    register_scripted(srv, "web-slow", ScriptedProvider(SLOW_REPLY, delay=0.12))
    register_scripted(srv, "web-fast", ScriptedProvider("Noted: books and authors."))
    yield srv
    srv.stop()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
