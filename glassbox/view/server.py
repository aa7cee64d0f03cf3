"""A read-only web server for graph files: the Glassbox viewer with no database and no account.

    GET  /                              the list of graphs (?format=json: the same as JSON)
    GET  /graph/{key}                   the viewer (?embed=1: without the site header)
    GET  /graph/{key}/data              the graph JSON
    POST /graph/{key}/features/dashboards   {"node_ids": [...]} -> {node id: dashboard | null}
    POST /graph/{key}/features/labels       {"node_ids": [...]} -> {node id: automatic label}
    GET  /static/...                    the viewer's files (the repository's frontend/static)

Nothing can be written: no labels kept by a server, no saved views, no interventions (the page
gives the viewer no adapter for them, so it does not offer them). It is the standard library's
threading HTTP server, so the engine serves graphs without the web application installed.
Bound to a loopback address, it answers only requests addressed to a loopback host name, so a
web page cannot reach it through a DNS name that points at this machine.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from glassbox.errors import GlassboxError
from glassbox.view import features as feature_data
from glassbox.view.catalog import Catalog, ViewGraph
from glassbox.view.pages import graph_page, list_page

logger = logging.getLogger(__name__)

FRONTEND_ENV = "GLASSBOX_FRONTEND_DIR"  # the same variable the application's settings read
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
MAX_BODY = 8 * 1024 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json",
                 ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain; charset=utf-8",
                 ".md": "text/plain; charset=utf-8"}


def frontend_dir() -> Path:
    """The viewer's files: $GLASSBOX_FRONTEND_DIR, else frontend/ beside the glassbox package."""
    env = os.environ.get(FRONTEND_ENV)
    folder = Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "frontend"
    if not (folder / "static" / "viewer" / "index.js").is_file():
        raise GlassboxError(f"the viewer's files are not in {folder} (no static/viewer/index.js): run from "
                            f"a source checkout, or set {FRONTEND_ENV} to the repository's frontend/ folder")
    return folder


class ViewServer:
    """The server and its thread. `start()` serves in the background (notebooks);
    `serve_forever()` blocks until interrupted (the CLI)."""

    def __init__(self, catalog: Catalog | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 frontend: Path | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.static = ((frontend or frontend_dir()) / "static").resolve()
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self.httpd = server_class((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.view = self  # type: ignore[attr-defined]  # the handler reaches the server here
        self.loopback = host in LOOPBACK_NAMES or host.startswith("127.")
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}"

    def graph_url(self, graph: ViewGraph, *, embed: bool = False) -> str:
        return f"{self.url}/graph/{graph.key}" + ("?embed=1" if embed else "")

    def start(self) -> ViewServer:
        """Serve from a daemon thread (it ends with the process or `stop()`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name="glassbox-view",
                                            daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "glassbox-view"
    protocol_version = "HTTP/1.1"

    @property
    def view(self) -> ViewServer:
        return self.server.view  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        logger.debug("view %s: " + format, self.address_string(), *args)

    # ---- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        parts = [p for p in url.path.split("/") if p]
        if not parts:
            graphs = self.view.catalog.graphs()
            if query.get("format") == ["json"]:
                return self._json({"graphs": [g.listing() for g in graphs]})
            return self._send(HTTPStatus.OK, list_page(graphs).encode(), "text/html; charset=utf-8")
        if parts[0] == "static":
            return self._static(parts[1:])
        if parts[0] == "graph" and len(parts) in (2, 3):
            graph = self._graph(parts[1])
            if graph is None:
                return None
            if len(parts) == 2:
                if query.get("format") == ["json"]:
                    return self._json(graph.listing())
                page = graph_page(graph, embed=query.get("embed") == ["1"])
                return self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            if parts[2] == "data":
                return self._graph_data(graph)
        return self._error(HTTPStatus.NOT_FOUND, f"no page {url.path}")

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) != 4 or parts[0] != "graph" or parts[2] != "features" or parts[3] not in (
                "dashboards", "labels"):
            return self._error(HTTPStatus.NOT_FOUND, "the only writes are feature lookups")
        graph = self._graph(parts[1])
        if graph is None:
            return None
        if graph.features is None:
            return self._error(HTTPStatus.NOT_FOUND, "this graph has no features store (see --features)")
        node_ids = self._node_ids()
        if node_ids is None:
            return None
        try:
            if parts[3] == "dashboards":
                answer: dict[str, Any] = feature_data.dashboards(graph.features, node_ids)
            else:  # the graph file's own labels come first: automatic labels only where it has none
                unlabelled = [i for i in node_ids if i not in graph.labelled]
                answer = feature_data.labels(graph.features, unlabelled)
        except GlassboxError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, str(exc))
        return self._json(answer)

    # ---- parts -----------------------------------------------------------------------------

    def _host_ok(self) -> bool:
        """On a loopback address, answer only requests for a loopback host name."""
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not self.view.loopback or name.lower() in LOOPBACK_NAMES:
            return True
        self._error(HTTPStatus.FORBIDDEN, f"this server answers 127.0.0.1 and localhost, not {host!r}")
        return False

    def _graph(self, key: str) -> ViewGraph | None:
        graph = self.view.catalog.get(key)
        if graph is None:
            self._error(HTTPStatus.NOT_FOUND, f"no graph {key!r} on this server")
        return graph

    def _graph_data(self, graph: ViewGraph) -> None:
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
        if graph.gzipped and accepts_gzip:
            return self._send(HTTPStatus.OK, graph.data, "application/json", encoding="gzip")
        return self._send(HTTPStatus.OK, graph.json_bytes(), "application/json")

    def _static(self, parts: list[str]) -> None:
        path = self.view.static.joinpath(*parts).resolve() if parts else self.view.static
        if self.view.static not in path.parents or not path.is_file():
            return self._error(HTTPStatus.NOT_FOUND, "no such file")
        kind = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return self._send(HTTPStatus.OK, path.read_bytes(), kind)

    def _node_ids(self) -> list[str] | None:
        """The request's {"node_ids": [str, ...]}, or None after answering 400."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"send a JSON body of at most {MAX_BODY} bytes")
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        ids = body.get("node_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            self._error(HTTPStatus.BAD_REQUEST, 'send {"node_ids": ["layer_feature_pos", ...]}')
            return None
        return ids

    def _json(self, value: Any) -> None:
        try:
            raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        except ValueError as exc:  # NaN or infinity in a dashboard: not JSON
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the answer is not valid JSON: {exc}")
        return self._send(HTTPStatus.OK, raw, "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        """A JSON error ({"error": {"message"}}, what lib/http.js shows); the connection closes,
        so a request body left unread cannot be taken for the next request."""
        self.close_connection = True
        raw = json.dumps({"error": {"message": message}}).encode()
        self._send(status, raw, "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, *,
              encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "same-origin")
        if content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
