"""Shared helpers for the viewer's browser tests and bench: a static file server and Chromium.

Chromium is Debian's package (`apt-get install -y chromium`), never a Playwright download.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glassbox.graph.schemas import SCHEMA_DIR

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = SCHEMA_DIR
CHROMIUM_PATH = os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWER_PAGE = "/frontend/dev/viewer.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request and without browser caching."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".svg": "image/svg+xml",
    }

    aliases: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        """URL prefixes in `aliases` map to other files or folders (e.g. /static/ -> frontend/static/)."""
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, target in self.aliases.items():
            if clean == prefix or (prefix.endswith("/") and clean.startswith(prefix)):
                rest = clean[len(prefix) :]
                resolved = (target / rest).resolve() if rest else target
                if target in resolved.parents or resolved == target:
                    return str(resolved)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("static server: " + format, *args)


@contextmanager
def static_server(root: Path = REPO_ROOT, aliases: dict[str, Path] | None = None) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 at a free port (plus `aliases`: URL prefix -> path); yields the base URL."""
    handler_class = type(
        "_Handler", (_QuietHandler,), {"aliases": {k: Path(v).resolve() for k, v in (aliases or {}).items()}}
    )
    handler = functools.partial(handler_class, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="viewer-static", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def launch_chromium(playwright: Any) -> Any:
    """Start headless Debian Chromium; raises FileNotFoundError with the install hint if absent."""
    if not Path(CHROMIUM_PATH).exists():
        raise FileNotFoundError(
            f"Chromium not found at {CHROMIUM_PATH}: run `apt-get install -y chromium` "
            "(or set GLASSBOX_CHROMIUM to its path)"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)


def viewer_url(base_url: str, graph: str, **params: str) -> str:
    """URL of the dev page showing `graph` (a path under the repo root, e.g. /tests/...json)."""
    from urllib.parse import urlencode

    query = urlencode({"graph": graph, **params})
    return f"{base_url}{VIEWER_PAGE}?{query}"


def wait_for_viewer(page: Any, timeout_ms: float = 15_000) -> None:
    """Wait until the dev page has mounted the viewer and painted it once."""
    page.wait_for_function("document.documentElement.dataset.viewerReady === '1'", timeout=timeout_ms)


STATE_JS = """() => {
  const s = window.glassboxDev.handle.getState();
  return {...s, clerps: [...s.clerps], serverLabels: [...s.serverLabels],
          dashboards: [...s.dashboards.keys()], densities: [...s.densities]};
}"""


class ViewerPage:
    """A Playwright page showing the dev viewer, with helpers that speak in node ids."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self, graph: str = "/tests/frontend/fixtures/small_graph.json", **params: str) -> ViewerPage:
        self.page.goto(viewer_url(self.base_url, graph, **params))
        wait_for_viewer(self.page)
        return self

    def open_url(self, url: str) -> ViewerPage:
        self.page.goto(url)
        wait_for_viewer(self.page)
        return self

    def state(self) -> dict[str, Any]:
        return self.page.evaluate(STATE_JS)

    def visible_ids(self) -> list[str]:
        return self.page.evaluate("window.glassboxDev.handle.visibleNodeIds()")

    def api_calls(self, name: str) -> list[Any]:
        calls = self.page.evaluate("window.glassboxDev.api.calls")
        return [args for call, args in calls if call == name]

    def position(self, node_id: str) -> dict[str, float]:
        pos = self.page.evaluate("id => window.glassboxDev.handle.nodeScreenPosition(id)", node_id)
        if pos is None:
            raise AssertionError(f"node {node_id} is not visible")
        return pos

    def hover(self, node_id: str) -> None:
        pos = self.position(node_id)
        self.page.mouse.move(pos["x"], pos["y"])

    def click(self, node_id: str, modifiers: list[str] | None = None) -> None:
        pos = self.position(node_id)
        for key in modifiers or []:
            self.page.keyboard.down(key)
        self.page.mouse.click(pos["x"], pos["y"])
        for key in reversed(modifiers or []):
            self.page.keyboard.up(key)

    def wait_state(self, expression: str, arg: Any = None) -> None:
        """Wait until `expression` (a JS function of the state object and arg) is true."""
        self.page.wait_for_function(
            "([arg]) => { const s = window.glassboxDev.handle.getState(); "
            f"return ({expression})(s, arg); }}",
            arg=[arg],
        )

    def screenshot(self, name: str) -> Path:
        path = REPO_ROOT / "test-artifacts" / "frontend" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path
