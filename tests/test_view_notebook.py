"""`result.show()` in a real Jupyter kernel (nbclient + ipykernel): the cell's output is an
iframe of a view server running in the kernel, which answers with the viewer page and the
graph, and the viewer draws the graph in Chromium inside that iframe. The kernel stays up
while the test reads the server; it is shut down at the end."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

REPO = Path(__file__).resolve().parents[1]
PROMPT = "The capital of Texas is"
IFRAME_SRC = re.compile(r'<iframe src="(http://127\.0\.0\.1:\d+/graph/([^"?]+)\?embed=1)"')

TRACE_CELL = f"""
import glassbox
from glassbox.testing import make_random_transcoders, make_tiny_model
model = make_tiny_model("llama")
result = glassbox.trace({PROMPT!r}, model=model, transcoders=make_random_transcoders(model, d_transcoder=24))
result.show(height=600)
"""
GRAPH_CELL = "result.graph.show(node_threshold=0.5)"


@pytest.fixture(scope="module")
def kernel_outputs() -> Iterator[list[dict[str, Any]]]:
    """Runs the cells in a fresh python3 kernel; yields each cell's display data while the
    kernel (and the view server in it) still runs."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(TRACE_CELL), nbformat.v4.new_code_cell(GRAPH_CELL)]
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        yield [_display_data(cell) for cell in notebook.cells]


def _display_data(cell: Any) -> dict[str, Any]:
    shown = [out for out in cell.outputs if out.output_type in ("execute_result", "display_data")]
    errors = [out for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"the cell failed: {errors}"
    assert len(shown) == 1, f"expected one displayed value, got {cell.outputs}"
    return dict(shown[0]["data"])


def _get(url: str) -> tuple[str, bytes]:
    with urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def test_show_displays_an_iframe_of_a_server_with_the_viewer_and_the_graph(
        kernel_outputs: list[dict[str, Any]]) -> None:
    data = kernel_outputs[0]
    assert data["text/plain"].startswith("<glassbox viewer of ")
    match = IFRAME_SRC.search(data["text/html"])
    assert match, data["text/html"]
    url, key = match.groups()
    assert 'height="600"' in data["text/html"]

    kind, page = _get(url)
    assert kind.startswith("text/html")
    assert f'data-graph-url="/graph/{key}/data"' in page.decode()
    assert '<script type="module" src="/static/pages/view.js">' in page.decode()
    base = url.split("/graph/")[0]
    kind, raw = _get(f"{base}/graph/{key}/data")
    graph = json.loads(raw)
    assert kind == "application/json" and graph["metadata"]["prompt"] == PROMPT
    assert any(n["feature_type"] == "logit" for n in graph["nodes"])
    kind, script = _get(f"{base}/static/viewer/index.js")
    assert kind == "text/javascript" and b"export async function mountGraphViewer" in script


def test_graph_show_adds_another_graph_to_the_same_server(kernel_outputs: list[dict[str, Any]]) -> None:
    first = IFRAME_SRC.search(kernel_outputs[0]["text/html"])
    second = IFRAME_SRC.search(kernel_outputs[1]["text/html"])
    assert first and second
    assert first.group(1).split("/graph/")[0] == second.group(1).split("/graph/")[0]
    assert first.group(2) != second.group(2)
    base = first.group(1).split("/graph/")[0]
    listed = json.loads(_get(f"{base}/?format=json")[1])["graphs"]
    assert [g["key"] for g in listed] == [first.group(2), second.group(2)]
    assert listed[1]["nodes"] <= listed[0]["nodes"]  # a lower node threshold keeps fewer nodes


@pytest.mark.browser
def test_the_output_draws_the_graph_in_a_browser(kernel_outputs: list[dict[str, Any]], browser: Any) -> None:
    """The cell's HTML as a notebook page holds it: the iframe mounts the viewer, offline."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    outside: list[str] = []
    local = ("http://127.0.0.1", "data:", "about:")
    page.on("request", lambda r: r.url.startswith(local) or outside.append(r.url))
    try:
        page.set_content(f"<!doctype html><body>{kernel_outputs[0]['text/html']}</body>")
        frame = page.frame_locator("iframe")
        frame.locator("[data-viewer-ready]").wait_for(timeout=15_000)
        assert frame.locator(".gbv-prompt-text").text_content() == PROMPT
        assert frame.locator(".gb-header").count() == 0  # embedded: no site header
    finally:
        context.close()
    assert errors == [] and outside == []
