"""Browser fixtures for the graph viewer: one static server and one Chromium per session, a fresh
context per test. Every test fails if the page threw an uncaught error or opened a JS dialog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from featured_graph import feature_details, featured_like_graph
from viewer_harness import ViewerPage, static_server

DESKTOP = {"width": 1280, "height": 800}
GENERATED = "/generated/"  # URL prefix of the files `generated_dir` writes
FEATURED_GRAPH = GENERATED + "featured_graph.json"
FEATURED_FEATURES = GENERATED + "featured_features.json"


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The featured-like graph (featured_graph.py) and its dashboards, written once per session."""
    folder = tmp_path_factory.mktemp("viewer-fixtures")
    graph = featured_like_graph()
    (folder / "featured_graph.json").write_text(json.dumps(graph))
    (folder / "featured_features.json").write_text(json.dumps(feature_details(graph)))
    return folder


@pytest.fixture(scope="session")
def base_url(generated_dir: Path) -> Iterator[str]:
    with static_server(aliases={GENERATED: generated_dir}) as url:
        yield url


@pytest.fixture
def page_events() -> dict[str, list[str]]:
    return {"errors": [], "dialogs": []}


@pytest.fixture
def viewer(browser: Any, base_url: str, page_events: dict[str, list[str]]) -> Iterator[ViewerPage]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))

    def on_dialog(dialog: Any) -> None:
        page_events["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield ViewerPage(page, base_url)
    context.close()
    assert page_events["errors"] == [], f"uncaught page errors: {page_events['errors']}"
    assert page_events["dialogs"] == [], f"unexpected JS dialogs: {page_events['dialogs']}"
